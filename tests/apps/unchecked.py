"""A Health with no checks: named by HEALTH_MIDDLEWARE_HEALTH, it is refused."""

from __future__ import annotations

from health_middleware import Health

health = Health(service_id="unchecked")
