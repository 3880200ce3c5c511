"""A service with one negotiated endpoint (``/health/any``) and a passing and a
warning check, for content negotiation through a real server."""

from __future__ import annotations

from typing import Any

from health_middleware import CheckResult, Health, HealthMiddleware
from tests.apps.lifespan import serve_lifespan

health = Health(service_id="negotiated", interval=0.5, timeout=0.5)
health.add_check("db", lambda: True)
health.add_check(
    "cache",
    lambda: CheckResult("warn", observed_value=93.5, observed_unit="percent", output="<b>full</b>"),
    critical=False,
)
health.endpoint("/health/any", format="negotiate")


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"app"})


app = HealthMiddleware(_app, health)
