"""``WSGIHealthMiddleware``: health paths answered before a WSGI app runs."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from health_middleware.health import Health
from health_middleware.prestop import Prestop
from health_middleware.response import METHOD_NOT_ALLOWED, Prepared

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class WSGIHealthMiddleware:
    """Wrap a WSGI app; answer ``health``'s paths (``PATH_INFO``) from its snapshot.
    Any other request gets the app's own iterable back, untouched."""

    def __init__(self, app: WSGIApplication, health: Health) -> None:
        if not isinstance(health, Health):
            raise TypeError(f"health must be a Health object, got {type(health).__name__}")
        if not callable(app):
            raise TypeError(f"app must be a WSGI application, got {type(app).__name__}")
        self.app = app
        self.health = health

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        answers = self.health.snapshot.answers.get(path)
        if answers is None:
            return self.app(environ, start_response)
        health = self.health
        if not health.activated:
            health.start_in_thread()
            if health.wait_first_round:
                health.wait_first_round_sync()
                answers = health.snapshot.answers.get(path, answers)
        if answers.prestop is not None:
            response = self._prestop(answers.prestop, environ)
        # HEAD gets the GET response: a WSGI server drops the body of a HEAD
        # response itself (RFC 9110), and Content-Length then matches what was sent.
        elif environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            stale = time.monotonic() > health.snapshot.valid_until
            if stale:
                health.revive()
            response = answers.stale_get if stale else answers.get
        else:
            response = METHOD_NOT_ALLOWED
        start_response(response.wsgi_status, list(response.wsgi_headers))
        return [response.body]

    def _prestop(self, prestop: Prestop, environ: WSGIEnvironment) -> Prepared:
        if environ.get("REQUEST_METHOD") not in ("GET", "POST"):
            return prestop.not_allowed
        header = environ.get("HTTP_AUTHORIZATION")
        if not prestop.authorised(header.encode("latin-1") if header is not None else None):
            return prestop.refused
        self.health.drain()
        time.sleep(prestop.delay)  # this worker waits; the drain reaches the others
        return prestop.done
