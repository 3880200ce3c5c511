"""``HealthMiddleware``: health paths answered before an ASGI app runs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from asgiref.compatibility import guarantee_single_callable
from asgiref.typing import (
    ASGI3Application,
    ASGIApplication,
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
    HTTPScope,
    LifespanScope,
    Scope,
)

from health_middleware.config.callables import interface, named, refuse_factory
from health_middleware.config.validation import StartError
from health_middleware.health import Health
from health_middleware.web.response import METHOD_NOT_ALLOWED, Prepared

__all__ = ["HealthMiddleware"]

logger = logging.getLogger("health_middleware")
_monotonic = time.monotonic


def health_path(scope: HTTPScope) -> str:
    """The path of an HTTP ``scope`` to match: ``path`` less ``root_path`` where it
    starts with it at a ``/`` boundary (servers differ on whether ``path`` includes
    ``root_path``)."""
    path = scope["path"]
    root = scope.get("root_path")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("/", ""):
        return path[len(root) :]
    return path


class HealthMiddleware:
    """An ASGI app with ``health``'s endpoints in front of it.

    A request for one of ``health``'s paths is answered from its snapshot before the
    app sees it; every other request, and every WebSocket, goes to the app untouched.
    The lifespan protocol passes through: the refresher starts when the app's startup
    completes (and stops on shutdown); for an app that does not speak lifespan the
    middleware answers it, and without lifespan at all the first health request
    starts the refresher.

    Args:
        app: The ASGI 3 (or ASGI 2) application.
        health: The ``Health`` whose endpoints to answer.

    Raises:
        TypeError: ``health`` is not a ``Health``, or ``app`` is not an ASGI
            application (for a WSGI one the message names ``WSGIHealthMiddleware``;
            an app factory is refused).
    """

    def __init__(
        self, app: ASGIApplication | Callable[..., Awaitable[None]], health: Health
    ) -> None:
        # Frameworks type their apps in their own ways (Starlette's scope is a
        # MutableMapping), so any ASGI 2 or 3 callable is accepted here.
        if not isinstance(health, Health):
            raise TypeError(f"health must be a Health object, got {type(health).__name__}")
        if not callable(app):
            raise TypeError(f"app must be an ASGI application, got {type(app).__name__}")
        refuse_factory(app, "app")
        if interface(app) == "wsgi":
            raise TypeError(
                f"app {named(app)} is a WSGI application (it takes environ and "
                "start_response): wrap it with WSGIHealthMiddleware(app, health)"
            )
        self.app: ASGI3Application = guarantee_single_callable(app)  # type: ignore[no-untyped-call]
        self.health = health
        self._publisher = health.engine.publisher  # the snapshot's home: one lookup per request
        self._sharing = health.engine.sharing
        self._runtime = health.runtime

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        # The hot path: for any request one dict lookup; for a probe, a clock read and
        # two sends of prepared data. Everything else is in the slow helpers.
        if scope["type"] == "http":
            path = scope["path"]
            root = scope.get("root_path")
            if root:
                path = health_path(scope)
            snapshot = self._publisher.snapshot
            answers = snapshot.answers.get(path)
            if answers is not None:
                # Inline, not Snapshot.decide(): a call would cost a probe ~60 ns. Not
                # yet started, expired, an action or a token to compare: the slow path.
                if not answers.slow and _monotonic() <= snapshot.valid_until:
                    method = scope["method"]
                    if method == "GET":
                        response = answers.get
                    elif method == "HEAD":
                        response = answers.head
                    else:
                        response = METHOD_NOT_ALLOWED
                else:
                    response = await self._slow(path, scope)
                await send(
                    {
                        "type": "http.response.start",
                        "status": response.status,
                        "headers": list(response.headers),
                        "trailers": False,
                    }
                )
                await send(
                    {"type": "http.response.body", "body": response.body, "more_body": False}
                )
                return
        elif scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _slow(self, path: str, scope: HTTPScope) -> Prepared:
        """Do what ``Snapshot.decide`` says (it also picks a negotiated variant), on
        this loop: start the refresher (the first request of a process run without
        lifespan, with ``wait_first_round`` waiting for its first round), revive it,
        or drain and wait (pre-stop)."""
        publisher, method = self._publisher, scope["method"]

        def authorization() -> bytes | None:
            return _header(scope, b"authorization")

        def accept() -> tuple[bytes | None, bytes | None]:
            return _header(scope, b"accept"), scope.get("query_string")

        decision = publisher.snapshot.decide(path, method, authorization, _monotonic(), accept)
        if decision.start:
            await self._start()
            decision = publisher.snapshot.decide(path, method, authorization, _monotonic(), accept)
        if decision.revive:
            self._runtime.revive()
        if decision.drain_for is not None:
            self._sharing.drain()
            await asyncio.sleep(decision.drain_for)
        return decision.response

    async def _lifespan(
        self, scope: LifespanScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Pass the protocol through (same scope object), starting the refresher when
        the app reports startup complete and stopping it on shutdown. An app that does
        not speak lifespan (Django, most ASGI 2 apps) is covered: we answer for it."""
        sharing = self._sharing
        received_startup = False
        answered_startup = False
        failed = False  # we failed the startup (validation.StartError): the server is told
        # What the server raised when told (hypercorn stops its start so): it must get
        # it back, whatever the app made of it on the way.
        server_error: Exception | None = None

        async def receive_wrapper() -> ASGIReceiveEvent:
            nonlocal received_startup
            message = await receive()
            if message["type"] == "lifespan.startup":
                received_startup = True
            elif message["type"] == "lifespan.shutdown":
                sharing.drain_process()  # this worker only: its siblings keep serving
                await self._runtime.stop_async()
            return message

        async def send_wrapper(message: ASGISendEvent) -> None:
            nonlocal answered_startup, failed, server_error
            if message["type"] == "lifespan.startup.complete":
                answered_startup = True
                try:
                    await self._start()
                except StartError as exc:
                    failed = True
                    server_error = await _refuse_startup(send, exc)
                    raise  # into the app's lifespan: it must not go on as started
            elif message["type"] == "lifespan.startup.failed":
                answered_startup = True
                if failed:
                    return  # the app reporting our failure: the server has it
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception as exc:
            if server_error is not None:
                raise server_error from None
            if failed:
                return  # our own failure, reported to the server already
            if answered_startup or received_startup:
                # It took the startup message and then failed: its own failure, which
                # the server must see as it would without us.
                raise
            logger.debug("the app does not support lifespan (%r): answering it", exc)
        if answered_startup:
            return
        if not received_startup:
            await receive()
        try:
            await self._start()
        except StartError as exc:
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        while (await receive())["type"] != "lifespan.shutdown":
            pass
        sharing.drain_process()
        await self._runtime.stop_async()
        await send({"type": "lifespan.shutdown.complete"})

    async def _start(self) -> None:
        self._runtime.start_on_loop()
        if self.health.wait_first_round:
            await self._publisher.wait_first_round_async()


async def _refuse_startup(send: ASGISendCallable, error: StartError) -> Exception | None:
    """Tell the server the startup failed; return what it raised as it was told
    (hypercorn stops its start so), else None."""
    try:
        await send({"type": "lifespan.startup.failed", "message": str(error)})
    except Exception as raised:
        return raised
    return None


def _header(scope: HTTPScope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):  # required, but tests often omit it
        if key.lower() == name:
            return value
    return None
