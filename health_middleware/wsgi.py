"""``WSGIHealthMiddleware``: health paths answered before a WSGI app runs."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from health_middleware.health import Health
from health_middleware.prestop import Prestop
from health_middleware.response import METHOD_NOT_ALLOWED, Prepared
from health_middleware.snapshot import Answers

_monotonic = time.monotonic


def _authorization(environ: WSGIEnvironment) -> bytes | None:
    header = environ.get("HTTP_AUTHORIZATION")
    if not isinstance(header, str):
        return None
    # PEP 3333 headers are Latin-1 strings; a server (or a test client) may pass
    # others: they can never match a token, and must not raise.
    return header.encode("latin-1", "replace")


_READ = frozenset(("GET", "HEAD"))

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
        snapshot = self.health.snapshot
        answers = snapshot.answers.get(path)
        if answers is None:
            return self.app(environ, start_response)
        # HEAD gets the GET's headers and no body: not every WSGI server drops a HEAD
        # body itself (wsgiref and waitress send it, and a keep-alive connection then
        # reads it as the next response).
        if not answers.special and _monotonic() <= snapshot.valid_until:
            method = environ.get("REQUEST_METHOD")
            if method == "GET":
                response = answers.get
            elif method == "HEAD":
                response = answers.head
            else:
                response = METHOD_NOT_ALLOWED
        else:  # not yet started, stale, a token to compare, or the pre-stop action
            response = self._slow(path, answers, environ)
        start_response(response.wsgi_status, list(response.wsgi_headers))
        return [response.body] if response.body else []

    def _slow(self, path: str, answers: Answers, environ: WSGIEnvironment) -> Prepared:
        health = self.health
        if not health.activated:
            health.start_in_thread()
            if health.wait_first_round:
                health.wait_first_round_sync()
        snapshot = health.snapshot
        answers = snapshot.answers.get(path, answers)
        if answers.prestop is not None:
            return self._prestop(answers.prestop, environ)
        if answers.token is not None:  # only then is a header worth reading
            answers = answers.for_bearer(_authorization(environ))
        method = environ.get("REQUEST_METHOD")
        if method not in _READ:
            return METHOD_NOT_ALLOWED
        stale = _monotonic() > snapshot.valid_until
        if stale:
            health.revive()
        if method == "HEAD":
            return answers.stale_head if stale else answers.head
        return answers.stale_get if stale else answers.get

    def _prestop(self, prestop: Prestop, environ: WSGIEnvironment) -> Prepared:
        if environ.get("REQUEST_METHOD") not in ("GET", "POST"):
            return prestop.not_allowed
        if not prestop.authorised(_authorization(environ)):
            return prestop.refused
        self.health.drain()
        time.sleep(prestop.delay)  # this worker waits; the drain reaches the others
        return prestop.done
