"""The benchmark's bare constant apps send exactly what the middleware sends for
/health/ready: "ours ÷ bare" must measure the middleware, not a difference on the wire
(a header more costs a server like h11 or granian several per cent by itself)."""

from __future__ import annotations

import asyncio
from typing import Any

from werkzeug.test import Client

from benchmarks.apps import bare_asgi, bare_wsgi
from benchmarks.inprocess import _prepared_health
from health_middleware import HealthMiddleware, WSGIHealthMiddleware
from tests.support import http_scope


async def _messages(app: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(http_scope("/health/ready"), receive, send)
    return sent


def test_the_bare_apps_send_the_middlewares_response_byte_for_byte() -> None:
    health = _prepared_health()  # first round done: /health/ready passes
    try:
        ours = asyncio.run(_messages(HealthMiddleware(bare_asgi, health)))
        bare = asyncio.run(_messages(bare_asgi))
        assert [m["type"] for m in ours] == ["http.response.start", "http.response.body"]
        assert ours == bare  # status, every header in order, the body, no other keys

        ours_wsgi = Client(WSGIHealthMiddleware(bare_wsgi, health)).get("/health/ready")
        bare_wsgi_response = Client(bare_wsgi).get("/health/ready")
        assert ours_wsgi.status == bare_wsgi_response.status == "200 OK"
        assert list(ours_wsgi.headers.items()) == list(bare_wsgi_response.headers.items())
        assert ours_wsgi.data == bare_wsgi_response.data == b'{"status":"pass"}'
    finally:
        health.stop()
