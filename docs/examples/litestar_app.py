"""Litestar with health endpoints: uvicorn litestar_app:app"""

import sqlite3

from litestar import Litestar, get

from health_middleware import Health, HealthMiddleware, checks

health = Health(service_id="orders-api", version="1.4.2")
health.add_check("sqlite:responseTime", checks.dbapi(lambda: sqlite3.connect("app.db", timeout=1)))


@get("/")
async def home() -> str:
    return "Hello\n"


app = HealthMiddleware(Litestar(route_handlers=[home]), health)
