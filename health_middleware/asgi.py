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
        if scope["type"] == "http":
            path = health_path(scope)
            answers = self.health.snapshot.answers.get(path)
            if answers is not None:
                if not self.health.activated:
                    answers = await self._activate(path, answers)
                if answers.prestop is None:
                    await self._answer(answers, scope["method"], send)
                else:
                    await self._prestop(answers.prestop, scope, send)
                return
        elif scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _activate(self, path: str, answers: Answers) -> Answers:
        """The first health request of a process run without lifespan starts the
        refresher (and with ``wait_first_round`` waits for its first round)."""
        health = self.health
        health.start_on_loop()
        if health.wait_first_round:
            await health.wait_first_round_async()
        return health.snapshot.answers.get(path, answers)

    async def _answer(self, answers: Answers, method: str, send: ASGISendCallable) -> None:
        stale = time.monotonic() > self.health.snapshot.valid_until
        if stale:
            self.health.revive()
        if method == "GET":
            response = answers.stale_get if stale else answers.get
        elif method == "HEAD":
            response = answers.stale_head if stale else answers.head
        else:
            response = METHOD_NOT_ALLOWED
        await _send(response, send)

    async def _prestop(self, prestop: Prestop, scope: HTTPScope, send: ASGISendCallable) -> None:
        if scope["method"] not in ("GET", "POST"):
            response = prestop.not_allowed
        elif prestop.authorised(_header(scope, b"authorization")):
            self.health.drain()
            await asyncio.sleep(prestop.delay)
            response = prestop.done
        else:
            response = prestop.refused
        await _send(response, send)

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
                health.drain()
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
            if answered_startup:
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
        health.drain()
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


async def _send(response: Prepared, send: ASGISendCallable) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": list(response.headers),
            "trailers": False,
        }
    )
    await send({"type": "http.response.body", "body": response.body, "more_body": False})
