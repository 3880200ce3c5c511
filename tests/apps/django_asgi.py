"""The Django ASGI app, wrapped in code (Django rejects the lifespan protocol)."""

from __future__ import annotations

from health_middleware import Health, HealthMiddleware
from tests.apps.fw_django import asgi

health = Health(interval=0.5, timeout=0.5)
health.add_check("always", lambda: True)
app = HealthMiddleware(asgi, health)
