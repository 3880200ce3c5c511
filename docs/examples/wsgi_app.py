"""Any WSGI app with health endpoints in front: gunicorn wsgi_app:application"""

import sqlite3

from health_middleware import Health, WSGIHealthMiddleware, checks

health = Health(service_id="orders-api", version="1.4.2")
health.add_check("sqlite:responseTime", checks.dbapi(lambda: sqlite3.connect("app.db", timeout=1)))
health.add_check("disk:utilization", checks.disk("/"), critical=False)


def application(environ, start_response):  # your app: Flask, Django...
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello\n"]


application = WSGIHealthMiddleware(application, health)
