"""Any ASGI app with health endpoints in front: uvicorn asgi_app:app"""

import sqlite3

from health_middleware import CheckResult, Health, HealthMiddleware, checks

health = Health(service_id="orders-api", version="1.4.2")
health.add_check("sqlite:responseTime", checks.dbapi(lambda: sqlite3.connect("app.db", timeout=1)))
health.add_check("disk:utilization", checks.disk("/"), critical=False)


@health.check("queue:size", critical=False)  # a failure here only degrades to "warn"
async def queue_size():
    waiting = 3  # e.g. await your_queue.size()
    return CheckResult(status="warn" if waiting > 1000 else "pass", observed_value=waiting)


async def app(scope, receive, send):  # your app: Starlette, FastAPI, Quart, Django...
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"Hello\n"})


app = HealthMiddleware(app, health)
