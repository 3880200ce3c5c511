"""Flask's own idiom, the health middleware inside the app (``app.wsgi_app``), and the
app wrapped once more by a middleware of another library (``traced``); its one check
fails, so no answer of this app's health paths may be 200."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask

from health_middleware import Health, WSGIHealthMiddleware

health = Health(service_id="wrapped", interval=0.2)
health.add_check("db", lambda: False)

app = Flask(__name__)


@app.get("/")
def home() -> str:
    return "flask"


app.wsgi_app = WSGIHealthMiddleware(app.wsgi_app, health)  # type: ignore[method-assign]


class Tracing:
    """What a tracing or error-reporting library's WSGI middleware looks like."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.app(environ, start_response)  # type: ignore[no-any-return]


traced = Tracing(app)
