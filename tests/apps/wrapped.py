"""Flask's own idiom, the health middleware inside the app (``app.wsgi_app``), and the
app wrapped once more by a middleware of another library (``traced``) or served as
ASGI through Starlette's WSGI adapter (``asgi``); its one check fails, so no answer of
this app's health paths may be 200. HM_RUNS: a file each run of the check appends to."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from typing import Any

from flask import Flask

with warnings.catch_warnings():  # deprecated for a2wsgi, which the test extra lacks
    warnings.simplefilter("ignore")
    from starlette.middleware.wsgi import WSGIMiddleware

from health_middleware import Health, WSGIHealthMiddleware

health = Health(service_id="wrapped", interval=0.2)


@health.check("db")
def db() -> bool:
    if runs := os.environ.get("HM_RUNS"):
        with open(runs, "a") as file:
            file.write(f"{os.getpid()}\n")
    return False


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
asgi = WSGIMiddleware(app)
