"""A WSGI app that makes its middleware, then takes HM_IMPORT_SLEEP seconds (2 by
default) before it registers its endpoint and its check, tagged HM_TAG ("db"): made in
a gunicorn worker, the middleware starts at once, and its set-up must be judged on
what the app registers by the time the worker has loaded it, whether the module does
it (``app``) or a factory gunicorn calls (``create()``, with HM_FACTORY=1)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from health_middleware import Health, WSGIHealthMiddleware


def inner(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app"]


def create() -> WSGIHealthMiddleware:
    health = Health(service_id="slow-import", interval=0.2)
    app = WSGIHealthMiddleware(inner, health)
    time.sleep(float(os.environ.get("HM_IMPORT_SLEEP", "2")))
    health.endpoint("/health/db", group="db")
    health.add_check("db", lambda: True, tags={os.environ.get("HM_TAG", "db")})
    return app


if os.environ.get("HM_FACTORY") != "1":
    app = create()
