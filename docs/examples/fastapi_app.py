"""FastAPI with health endpoints: uvicorn fastapi_app:app"""

import sqlite3

from fastapi import FastAPI

from health_middleware import Health, HealthMiddleware, checks

health = Health(service_id="orders-api", version="1.4.2")
health.add_check("sqlite:responseTime", checks.dbapi(lambda: sqlite3.connect("app.db", timeout=1)))

app = FastAPI()
app.add_middleware(HealthMiddleware, health=health)


@app.get("/")
async def home() -> dict[str, str]:
    return {"hello": "world"}
