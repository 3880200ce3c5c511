"""A service whose checks flap and take their time, for long runs and shutdowns.

HM_SLOW: seconds each slow check takes (sync and async); HM_INTERVAL: the interval.
``/_tasks`` answers how many asyncio tasks the loop holds.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Iterable
from typing import Any

from health_middleware import CheckResult, Health, HealthMiddleware, WSGIHealthMiddleware
from tests.apps.lifespan import serve_lifespan

SLOW = float(os.environ.get("HM_SLOW", "0.05"))
health = Health(interval=float(os.environ.get("HM_INTERVAL", "0.1")), timeout=SLOW + 1)
_flips = itertools.count()


@health.check("flapping", critical=False)
def flapping() -> CheckResult:
    return CheckResult("pass" if next(_flips) % 2 else "fail", observed_value=1)


@health.check("slow-sync", critical=False)
def slow_sync() -> None:
    time.sleep(SLOW)


@health.check("slow-async")
async def slow_async() -> None:
    await asyncio.sleep(SLOW)


async def inner_asgi(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    body = str(len(asyncio.all_tasks())).encode() if scope["path"] == "/_tasks" else b"ok"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def inner_wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


asgi_app = HealthMiddleware(inner_asgi, health)
wsgi_app = WSGIHealthMiddleware(inner_wsgi, health)
