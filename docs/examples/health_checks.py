"""health_checks.py: the checks, for HEALTH_MIDDLEWARE_HEALTH=health_checks:health"""

import sqlite3

from health_middleware import Health, checks

health = Health(service_id="orders-api", version="1.4.2")
health.add_check("sqlite:responseTime", checks.dbapi(lambda: sqlite3.connect("app.db", timeout=1)))
health.add_check("disk:utilization", checks.disk("/"), critical=False)
