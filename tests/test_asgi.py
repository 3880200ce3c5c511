"""HealthMiddleware through the ASGI protocol: routing, methods, lifespan, pass-through."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from health_middleware import Health, HealthMiddleware
from tests.support import call, call_without_waiting, http_scope, poll


async def plain_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"app"})


def make(**options: Any) -> tuple[Health, HealthMiddleware]:
    health = Health(interval=0.05, timeout=0.5, **options)
    health.add_check("ok", lambda: True)
    return health, HealthMiddleware(plain_app, health)


async def test_default_endpoints_answer_and_others_reach_the_app() -> None:
    health, app = make()
    assert (await call(app, "/health/live")).status == 200  # before the first round
    assert (await call(app, "/health/ready")).status == 503
    assert (await call(app, "/health/started")).status == 503
    await poll(app, "/health/started", lambda r: r.status == 200)
    for path in ("/health", "/health/", "/health/live", "/health/ready/", "/health/started"):
        response = await call(app, path)
        assert response.status == 200, path
        assert response.headers["content-type"] == "application/health+json"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-length"] == str(len(response.body))
    assert (await call(app, "/healthz")).body == b"app"
    assert (await call(app, "/health/other")).body == b"app"
    assert (await call(app, "/")).body == b"app"
    await health.stop_async()


async def test_probe_bodies_are_minimal_and_stable() -> None:
    health, app = make()
    await poll(app, "/health/started", lambda r: r.status == 200)
    first = await call(app, "/health/ready")
    await asyncio.sleep(0.2)  # several check runs later
    assert first.json() == {"status": "pass"}
    assert (await call(app, "/health/ready")).body == first.body
    assert (await call(app, "/health/live")).json() == {"status": "pass"}
    await health.stop_async()


async def test_head_has_get_headers_and_no_body_and_other_methods_get_405() -> None:
    health, app = make()
    await poll(app, "/health", lambda r: r.status == 200)
    get, head = await call(app, "/health"), await call(app, "/health", "HEAD")
    assert head.status == get.status
    assert head.headers == get.headers
    assert head.body == b""
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"):
        response = await call(app, "/health", method)
        assert response.status == 405
        assert response.headers["allow"] == "GET, HEAD"
    await health.stop_async()


async def test_root_path_is_stripped_only_at_a_segment_boundary() -> None:
    health, app = make()
    await poll(app, "/health", lambda r: r.status == 200)
    # Servers that include root_path in path, and servers that do not.
    assert (await call(app, "/api/health", root_path="/api")).status == 200
    assert (await call(app, "/health", root_path="/api")).status == 200
    assert (await call(app, "/apihealth", root_path="/api")).body == b"app"
    assert (await call(app, "/api/health", root_path="/ap")).body == b"app"
    await health.stop_async()


async def test_custom_base_path_and_extra_endpoint() -> None:
    health = Health(base_path="/_status/", interval=0.05)
    health.add_check("ok", lambda: True)
    health.endpoint("/api/v1/health")
    app = HealthMiddleware(plain_app, health)
    await poll(app, "/_status", lambda r: r.status == 200)
    assert (await call(app, "/_status/ready")).status == 200
    assert (await call(app, "/api/v1/health")).json()["checks"]["ok"][0]["status"] == "pass"
    assert (await call(app, "/health")).body == b"app"
    await health.stop_async()


async def test_non_health_requests_get_the_very_same_objects() -> None:
    seen: list[tuple[Any, Any, Any]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    app = HealthMiddleware(inner, Health())
    for scope in (http_scope("/x"), {"type": "websocket", "path": "/health"}):

        async def receive() -> Any: ...
        async def send(message: Any) -> None: ...

        await app(scope, receive, send)  # type: ignore[arg-type]
        assert seen[-1][0] is scope
        assert seen[-1][1] is receive
        assert seen[-1][2] is send


async def test_a_probe_never_waits() -> None:
    health, app = make()
    # Before the refresher exists, after it is started lazily, for every method.
    for method in ("GET", "HEAD", "POST"):
        call_without_waiting(app, "/health/live", method)
    await poll(app, "/health", lambda r: r.status == 200)
    for method in ("GET", "HEAD", "POST"):
        call_without_waiting(app, "/health", method)
    await health.stop_async()


async def run_lifespan(app: Any, scope: dict[str, Any]) -> list[str]:
    """Drive startup then shutdown; return what the app sent."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app(scope, inbox.get, send))
    while "lifespan.startup.complete" not in sent and not task.done():
        await asyncio.sleep(0.01)
    scope["_after_startup"] = True
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(task, 5)
    return sent


async def test_lifespan_passes_through_with_the_same_scope_and_starts_the_refresher() -> None:
    health = Health(interval=0.05)
    health.add_check("ok", lambda: True)
    scopes: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        assert (await receive())["type"] == "lifespan.startup"
        scope["state"]["db"] = "connected"
        await send({"type": "lifespan.startup.complete"})
        assert health.activated
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    sent = await run_lifespan(HealthMiddleware(inner, health), scope)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert scopes == [scope]
    assert scopes[0] is scope
    assert scope["state"] == {"db": "connected"}
    assert health.draining  # shutdown drains


@pytest.mark.parametrize("when", ["before-receive", "returns"])
async def test_lifespan_is_answered_for_an_app_that_rejects_it(when: str) -> None:
    health = Health(interval=0.05)

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and when != "returns":
            raise ValueError("Django can only handle ASGI/HTTP connections, not lifespan.")

    sent = await run_lifespan(HealthMiddleware(inner, health), {"type": "lifespan"})
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_an_app_that_fails_its_startup_is_not_reported_started() -> None:
    """An app that took the startup message and then raised failed its own start-up:
    the error reaches the server (which exits under --lifespan on, as it would without
    the middleware), and no startup.complete is sent for it."""
    health = Health(interval=0.05)

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise ConnectionRefusedError("the database is down")

    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with pytest.raises(ConnectionRefusedError):
        await HealthMiddleware(inner, health)({"type": "lifespan"}, inbox.get, send)  # type: ignore[arg-type]
    assert sent == []
    assert not health.activated


async def test_startup_failed_is_passed_through_and_nothing_starts() -> None:
    health = Health()

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await HealthMiddleware(inner, health)({"type": "lifespan"}, inbox.get, send)  # type: ignore[arg-type]
    assert sent == [{"type": "lifespan.startup.failed", "message": "no database"}]
    assert not health.activated


async def test_an_asgi2_app_is_wrapped() -> None:
    class Asgi2:
        def __init__(self, scope: Any) -> None:
            if scope["type"] != "http":
                raise ValueError(f"unsupported scope {scope['type']}")
            self.scope = scope

        async def __call__(self, receive: Any, send: Any) -> None:
            await plain_app(self.scope, receive, send)

    health = Health(interval=0.05)
    app = HealthMiddleware(Asgi2, health)
    assert (await call(app, "/x")).body == b"app"
    await poll(app, "/health", lambda r: r.status == 200)
    sent = await run_lifespan(app, {"type": "lifespan"})
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
