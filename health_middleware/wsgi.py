"""``WSGIHealthMiddleware``: health paths answered before a WSGI app runs."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from health_middleware.config.callables import interface, named, refuse_factory
from health_middleware.health import Health
from health_middleware.process.shutdown import in_gunicorn_worker
from health_middleware.web.response import METHOD_NOT_ALLOWED, Prepared

__all__ = ["WSGIHealthMiddleware"]

_monotonic = time.monotonic


def _header(environ: WSGIEnvironment, key: str) -> bytes | None:
    header = environ.get(key)
    if not isinstance(header, str):
        return None
    # PEP 3333 headers are Latin-1 strings; a server (or a test client) may pass
    # others: they can never match a token, and must not raise.
    return header.encode("latin-1", "replace")


if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class WSGIHealthMiddleware:
    """A WSGI app with ``health``'s endpoints in front of it.

    A request whose ``PATH_INFO`` is one of ``health``'s paths is answered from its
    snapshot before the app sees it; any other request gets the app's own iterable
    back, untouched. The refresher starts on a thread of its own at the first health
    request (or at once in a gunicorn worker, where the middleware is made after the
    fork).

    Args:
        app: The WSGI application.
        health: The ``Health`` whose endpoints to answer.

    Raises:
        TypeError: ``health`` is not a ``Health``, or ``app`` is not a WSGI
            application (for an ASGI one the message names ``HealthMiddleware``; an
            app factory is refused).
    """

    def __init__(self, app: WSGIApplication, health: Health) -> None:
        if not isinstance(health, Health):
            raise TypeError(f"health must be a Health object, got {type(health).__name__}")
        if not callable(app):
            raise TypeError(f"app must be a WSGI application, got {type(app).__name__}")
        refuse_factory(app, "app")
        if interface(app) == "asgi":
            raise TypeError(
                f"app {named(app)} is an ASGI application (async, or an ASGI 2 class): "
                "wrap it with HealthMiddleware(app, health)"
            )
        self.app = app
        self.health = health
        self._publisher = health.engine.publisher  # the snapshot's home: one lookup per request
        self._runtime = health.runtime
        if in_gunicorn_worker():
            # Made in a gunicorn worker (its app is loaded after the fork, unlike under
            # --preload): start now, on the worker's main thread, as the hook does, so
            # SIGTERM can be wrapped (a gthread worker serves on other threads), the
            # probe port opens, and the first probe finds the instance's answer.
            self._runtime.start_in_thread(early=True)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        snapshot = self._publisher.snapshot
        answers = snapshot.answers.get(path)
        if answers is None:
            return self.app(environ, start_response)
        # HEAD gets the GET's headers and no body: not every WSGI server drops a HEAD
        # body itself (wsgiref and waitress send it, and a keep-alive connection then
        # reads it as the next response).
        if not answers.slow and _monotonic() <= snapshot.valid_until:
            method = environ.get("REQUEST_METHOD")
            if method == "GET":
                response = answers.get
            elif method == "HEAD":
                response = answers.head
            else:
                response = METHOD_NOT_ALLOWED
        else:  # not yet started, expired, a token, a variant to choose, or pre-stop
            response = self._slow(path, environ)
        start_response(response.wsgi_status, list(response.wsgi_headers))
        return [response.body] if response.body else []

    def _slow(self, path: str, environ: WSGIEnvironment) -> Prepared:
        """Do what ``Snapshot.decide`` says, on this thread: start the refresher's
        thread (with ``wait_first_round`` waiting for its first round), revive it, or
        drain and wait (pre-stop: this worker waits; the drain reaches the others)."""
        publisher, method = self._publisher, environ.get("REQUEST_METHOD")

        def authorization() -> bytes | None:
            return _header(environ, "HTTP_AUTHORIZATION")

        def accept() -> tuple[bytes | None, str | None]:
            query = environ.get("QUERY_STRING")
            return _header(environ, "HTTP_ACCEPT"), query if isinstance(query, str) else None

        decision = publisher.snapshot.decide(path, method, authorization, _monotonic(), accept)
        if decision.start:
            self._runtime.start_in_thread()
            if self.health.wait_first_round:
                publisher.wait_first_round_sync()
            decision = publisher.snapshot.decide(path, method, authorization, _monotonic(), accept)
        if decision.revive:
            self._runtime.revive()
        if decision.drain_for is not None:
            self.health.engine.sharing.drain()
            time.sleep(decision.drain_for)
        return decision.response
