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

from health_middleware.health import Health
from health_middleware.prestop import Prestop
from health_middleware.response import METHOD_NOT_ALLOWED, Prepared
from health_middleware.snapshot import Answers

logger = logging.getLogger("health_middleware")
_monotonic = time.monotonic


def health_path(scope: HTTPScope) -> str:
    """The path to match: ``path`` less ``root_path`` where it starts with it at a
    ``/`` boundary (servers differ on whether ``path`` includes ``root_path``)."""
    path = scope["path"]
    root = scope.get("root_path")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("/", ""):
        return path[len(root) :]
    return path


class HealthMiddleware:
    """Wrap an ASGI 3 (or ASGI 2) app; answer ``health``'s paths from its snapshot."""

    def __init__(
        self, app: ASGIApplication | Callable[..., Awaitable[None]], health: Health
    ) -> None:
        # Frameworks type their apps in their own ways (Starlette's scope is a
        # MutableMapping), so any ASGI 2 or 3 callable is accepted here.
        if not isinstance(health, Health):
            raise TypeError(f"health must be a Health object, got {type(health).__name__}")
        if not callable(app):
            raise TypeError(f"app must be an ASGI application, got {type(app).__name__}")
        self.app: ASGI3Application = guarantee_single_callable(app)  # type: ignore[no-untyped-call]
        self.health = health

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
            snapshot = self.health.snapshot
            answers = snapshot.answers.get(path)
            if answers is not None:
                # Inline, not _pick(): a call would cost a probe ~60 ns. Not yet started,
                # stale, an action or a token to compare: the slow path.
                if not answers.special and _monotonic() <= snapshot.valid_until:
                    method = scope["method"]
                    if method == "GET":
                        response = answers.get
                    elif method == "HEAD":
                        response = answers.head
                    else:
                        response = METHOD_NOT_ALLOWED
                else:
                    response = await self._slow(path, answers, scope)
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

    async def _slow(self, path: str, answers: Answers, scope: HTTPScope) -> Prepared:
        """The first request of a process run without lifespan starts the refresher
        (and with ``wait_first_round`` waits for its first round); the pre-stop endpoint
        acts rather than answers."""
        health = self.health
        if not health.activated:
            health.start_on_loop()
            if health.wait_first_round:
                await health.wait_first_round_async()
        snapshot = health.snapshot
        answers = snapshot.answers.get(path, answers)
        if answers.prestop is not None:
            return await self._prestop(answers.prestop, scope)
        if answers.token is not None:  # only then is a header worth reading
            answers = answers.for_bearer(_header(scope, b"authorization"))
        stale = _monotonic() > snapshot.valid_until
        if stale:
            health.revive()
        return self._pick(answers, scope["method"], stale)

    @staticmethod
    def _pick(answers: Answers, method: str, stale: bool) -> Prepared:
        if method == "GET":
            return answers.stale_get if stale else answers.get
        if method == "HEAD":
            return answers.stale_head if stale else answers.head
        return METHOD_NOT_ALLOWED

    async def _prestop(self, prestop: Prestop, scope: HTTPScope) -> Prepared:
        if scope["method"] not in ("GET", "POST"):
            return prestop.not_allowed
        if prestop.authorised(_header(scope, b"authorization")):
            self.health.drain()
            await asyncio.sleep(prestop.delay)
            return prestop.done
        return prestop.refused

    async def _lifespan(
        self, scope: LifespanScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Pass the protocol through (same scope object), starting the refresher when
        the app reports startup complete and stopping it on shutdown. An app that does
        not speak lifespan (Django, most ASGI 2 apps) is covered: we answer for it."""
        health = self.health
        received_startup = False
        answered_startup = False

        async def receive_wrapper() -> ASGIReceiveEvent:
            nonlocal received_startup
            message = await receive()
            if message["type"] == "lifespan.startup":
                received_startup = True
            elif message["type"] == "lifespan.shutdown":
                health.drain_process()  # this worker only: its siblings keep serving
                await health.stop_async()
            return message

        async def send_wrapper(message: ASGISendEvent) -> None:
            nonlocal answered_startup
            if message["type"] == "lifespan.startup.complete":
                answered_startup = True
                await self._start(health)
            elif message["type"] == "lifespan.startup.failed":
                answered_startup = True
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception as exc:
            if answered_startup or received_startup:
                # It took the startup message and then failed: its own failure, which
                # the server must see as it would without us.
                raise
            logger.debug("the app does not support lifespan (%r): answering it", exc)
        if answered_startup:
            return
        if not received_startup:
            await receive()
        await self._start(health)
        await send({"type": "lifespan.startup.complete"})
        while (await receive())["type"] != "lifespan.shutdown":
            pass
        health.drain_process()
        await health.stop_async()
        await send({"type": "lifespan.shutdown.complete"})

    @staticmethod
    async def _start(health: Health) -> None:
        health.start_on_loop()
        if health.wait_first_round:
            await health.wait_first_round_async()


def _header(scope: HTTPScope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value
    return None
