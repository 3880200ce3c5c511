"""Django: list ``"health_middleware.django"`` in ``INSTALLED_APPS`` and wrap the
application in ``asgi.py`` or ``wsgi.py``, so the health paths are answered before
Django builds a request:

```python
from django.core.asgi import get_asgi_application
from health_middleware.django import asgi

application = asgi(get_asgi_application())
```

The ``HEALTH_MIDDLEWARE`` setting (a dict; its keys are on the Django page of the
documentation) names or configures the ``Health``; every database, cache, the
migrations and Celery's workers are checked without writing a check.
``manage.py health`` runs every check once and prints them.
"""

from __future__ import annotations

from typing import Any

from health_middleware.asgi import HealthMiddleware
from health_middleware.django.config import get_health
from health_middleware.wsgi import WSGIHealthMiddleware

__all__ = ["asgi", "get_health", "wsgi"]


def asgi(application: Any) -> HealthMiddleware:
    """Django's ASGI application with the project's health endpoints in front.

    Args:
        application: What ``get_asgi_application()`` returns.

    Returns:
        ``application`` behind ``HealthMiddleware``, with the ``Health`` of
            ``get_health()``.
    """
    return HealthMiddleware(application, get_health())


def wsgi(application: Any) -> WSGIHealthMiddleware:
    """Django's WSGI application with the project's health endpoints in front.

    Args:
        application: What ``get_wsgi_application()`` returns.

    Returns:
        ``application`` behind ``WSGIHealthMiddleware``, with the ``Health`` of
            ``get_health()``.
    """
    return WSGIHealthMiddleware(application, get_health())
