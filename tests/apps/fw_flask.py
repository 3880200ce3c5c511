"""A bare Flask app."""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/")
def home() -> str:
    return "flask"
