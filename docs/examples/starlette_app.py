"""Starlette with health endpoints: uvicorn starlette_app:app"""

import sqlite3

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from health_middleware import Health, HealthMiddleware, checks

health = Health(service_id="orders-api", version="1.4.2")
health.add_check("sqlite:responseTime", checks.dbapi(lambda: sqlite3.connect("app.db", timeout=1)))


async def home(request):
    return PlainTextResponse("Hello\n")


app = Starlette(
    routes=[Route("/", home)],
    middleware=[Middleware(HealthMiddleware, health=health)],
)
