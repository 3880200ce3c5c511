"""One line for any server: factories that wrap an app named by a string.

    HEALTH_MIDDLEWARE_APP=proj.asgi:app uvicorn health_middleware.serve:asgi --factory
    gunicorn 'health_middleware.serve:wsgi("proj.wsgi:application")'
    hypercorn 'health_middleware.serve:asgi("proj.asgi", "app")'
    granian --interface asgi --factory health_middleware.serve:asgi

``HEALTH_MIDDLEWARE_HEALTH=proj.health:health`` names the ``Health`` to use (else one
with no checks); ``HEALTH_MIDDLEWARE_QUIET_PROBES=1`` keeps probes out of the access
logs. A factory only imports and wraps: nothing starts (gunicorn ``--preload`` runs it
in the master); the refresher starts in each worker.
"""

from __future__ import annotations

from health_middleware.asgi import HealthMiddleware
from health_middleware.loading import health_from_environment, load_app, target_from
from health_middleware.wsgi import WSGIHealthMiddleware


def asgi(app: str | None = None, attribute: str | None = None) -> HealthMiddleware:
    """The ASGI app named by ``app`` (``"module:attribute"``, or module and attribute
    apart for hypercorn), else by ``HEALTH_MIDDLEWARE_APP``, behind the middleware."""
    return HealthMiddleware(
        load_app(target_from(app, attribute), "asgi"), health_from_environment()
    )


def wsgi(app: str | None = None, attribute: str | None = None) -> WSGIHealthMiddleware:
    """The WSGI app named by ``app`` (or ``HEALTH_MIDDLEWARE_APP``), behind the middleware."""
    return WSGIHealthMiddleware(
        load_app(target_from(app, attribute), "wsgi"), health_from_environment()
    )
