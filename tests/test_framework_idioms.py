"""Each framework's own idiom from the documentation (docs/frameworks/), in process:
Starlette's and FastAPI's ``add_middleware`` (keyword arguments, lifespan still
honoured: startup starts the refresher, shutdown stops it), Flask's ``app.wsgi_app``,
Quart and Litestar wrapped unchanged, and plain ASGI and WSGI apps."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from health_middleware import Health, HealthMiddleware, WSGIHealthMiddleware
from tests.support import Response, call_app, poll


def make_health() -> Health:
    health = Health(interval=0.05, timeout=0.5)
    health.add_check("ok", lambda: True)
    return health


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[list[str]]:
    """Run the app's lifespan startup, yield what it sent, then shut it down."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app(scope, inbox.get, send))
    while "lifespan.startup.complete" not in sent:
        assert not task.done(), f"lifespan ended early: {sent}"
        await asyncio.sleep(0.01)
    yield sent
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(task, 5)


async def serves(app: Any, health: Health, home: bytes) -> None:
    """The health paths answer from the refresher, the app's own route from the app."""
    ready = await poll(app, "/health/ready", lambda r: r.status == 200)
    assert ready.json() == {"status": "pass"}
    assert (await call_app(app, "/")).body == home


async def started_and_stopped_by_lifespan(app: Any, health: Health, home: bytes) -> list[str]:
    events: list[str] = []
    async with lifespan(app) as sent:
        assert health.activated  # startup started the refresher
        running = health.runtime.running
        assert running is not None
        assert running.alive()
        await serves(app, health, home)
        events += sent
    assert health.draining  # shutdown drained, then stopped the refresher
    assert running.task is not None
    assert running.task.done()
    return events


def recorded_lifespan(events: list[str]) -> Callable[[Any], Any]:
    """An app's own lifespan that records its startup and shutdown in ``events``."""

    @contextlib.asynccontextmanager
    async def app_lifespan(app: Any) -> AsyncIterator[None]:
        events.append("app startup")
        yield
        events.append("app shutdown")

    return app_lifespan


async def test_starlette_add_middleware_with_keyword_args_and_lifespan() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    events: list[str] = []

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("starlette")

    health = make_health()
    app = Starlette(routes=[Route("/", home)], lifespan=recorded_lifespan(events))
    app.add_middleware(HealthMiddleware, health=health)
    await started_and_stopped_by_lifespan(app, health, b"starlette")
    assert events == ["app startup", "app shutdown"]  # the app's own lifespan still runs


async def test_fastapi_add_middleware_with_keyword_args_and_lifespan() -> None:
    from fastapi import FastAPI

    events: list[str] = []

    health = make_health()
    app = FastAPI(lifespan=recorded_lifespan(events))

    @app.get("/", response_model=None)
    async def home() -> str:
        return "fastapi"

    app.add_middleware(HealthMiddleware, health=health)
    await started_and_stopped_by_lifespan(app, health, b'"fastapi"')
    assert events == ["app startup", "app shutdown"]


async def test_quart_wrapped_unchanged() -> None:
    from quart import Quart

    app = Quart(__name__)

    @app.get("/")
    async def home() -> str:
        return "quart"

    health = make_health()
    wrapped = HealthMiddleware(app, health)
    await started_and_stopped_by_lifespan(wrapped, health, b"quart")


async def test_litestar_wrapped_unchanged() -> None:
    from litestar import Litestar, get

    @get("/", sync_to_thread=False)
    def home() -> str:
        return "litestar"

    health = make_health()
    wrapped = HealthMiddleware(Litestar(route_handlers=[home]), health)
    await started_and_stopped_by_lifespan(wrapped, health, b"litestar")


async def test_plain_asgi_app() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain"})

    health = make_health()
    wrapped = HealthMiddleware(app, health)
    await serves(wrapped, health, b"plain")  # no lifespan: the first health request starts it
    await health.stop_async()


def wsgi_get(app: Any, path: str) -> Response:
    from werkzeug.test import Client

    response = Client(app).get(path)
    return Response(response.status_code, dict(response.headers), response.get_data())


def until_ready(app: Callable[..., Iterable[bytes]]) -> None:
    deadline = time.monotonic() + 10
    while wsgi_get(app, "/health/ready").status != 200:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_flask_wsgi_app_idiom() -> None:
    from flask import Flask

    app = Flask(__name__)

    @app.get("/")
    def home() -> str:
        return "flask"

    health = make_health()
    app.wsgi_app = WSGIHealthMiddleware(app.wsgi_app, health)  # type: ignore[method-assign]
    try:
        until_ready(app)
        assert wsgi_get(app, "/").body == b"flask"
        assert wsgi_get(app, "/health").json()["status"] == "pass"
    finally:
        health.stop()


def test_plain_wsgi_app() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"plain"]

    health = make_health()
    wrapped = WSGIHealthMiddleware(app, health)
    try:
        until_ready(wrapped)
        assert wsgi_get(wrapped, "/").body == b"plain"
    finally:
        health.stop()
