"""Quart with health endpoints: hypercorn quart_app:app"""

import sqlite3

from quart import Quart

from health_middleware import Health, HealthMiddleware, checks

health = Health(service_id="orders-api", version="1.4.2")
health.add_check("sqlite:responseTime", checks.dbapi(lambda: sqlite3.connect("app.db", timeout=1)))

app = Quart(__name__)


@app.get("/")
async def home():
    return "Hello\n"


app = HealthMiddleware(app, health)
