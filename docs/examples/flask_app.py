"""Flask with health endpoints: gunicorn flask_app:app"""

import sqlite3

from flask import Flask

from health_middleware import Health, WSGIHealthMiddleware, checks

health = Health(service_id="orders-api", version="1.4.2")
health.add_check("sqlite:responseTime", checks.dbapi(lambda: sqlite3.connect("app.db", timeout=1)))

app = Flask(__name__)
app.wsgi_app = WSGIHealthMiddleware(app.wsgi_app, health)


@app.get("/")
def home():
    return "Hello\n"
