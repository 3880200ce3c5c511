"""A gunicorn hook that wraps each worker's app, for every worker class.

In your own ``gunicorn.conf.py``:

```python
from health_middleware.gunicorn import post_worker_init
```

or with no config file of your own: ``gunicorn -c python:health_middleware.gunicorn
proj.wsgi:application``. The ``Health`` comes from ``HEALTH_MIDDLEWARE_HEALTH``. The
gunicorn page of the documentation shows both.
"""

from __future__ import annotations

from typing import Any

from health_middleware.asgi import HealthMiddleware
from health_middleware.config import environment
from health_middleware.config.callables import interface
from health_middleware.serve import health_from_environment, health_named, healths_inside
from health_middleware.wsgi import WSGIHealthMiddleware

__all__ = ["post_worker_init"]

_ASGI_WORKERS = ("gunicorn.workers.gasgi", "uvicorn")


def _serves_asgi(worker: Any, app: Any) -> bool:
    for cls in type(worker).__mro__:
        if cls.__module__.startswith(_ASGI_WORKERS):
            return True
    return interface(app) == "asgi"


def post_worker_init(worker: Any) -> None:
    """gunicorn's ``post_worker_init`` hook: wrap the worker's app in the health
    middleware, in each worker after it loaded the app, before it serves.

    The ``Health`` is the one ``HEALTH_MIDDLEWARE_HEALTH`` names. An ASGI app (an
    ASGI worker class, or an app that speaks ASGI) gets ``HealthMiddleware`` and
    starts the refresher on its lifespan startup; a WSGI app gets
    ``WSGIHealthMiddleware`` and the refresher starts at once, so the worker's first
    probe finds the first round done. Each Health already inside the app, in code
    (the middleware itself, Flask's ``app.wsgi_app``, a tracing middleware around
    it), has its WSGI refresher started now (under ``--preload`` it was made in the
    master, where nothing starts); the app is then left as it is unless
    ``HEALTH_MIDDLEWARE_HEALTH`` names a Health (``none`` would hide the app's own).

    Args:
        worker: The gunicorn worker, as gunicorn passes it.
    """
    # gunicorn's own ASGI worker keeps the app in .asgi; every other worker in .wsgi.
    attribute = "asgi" if hasattr(worker, "asgi") else "wsgi"
    app = getattr(worker, attribute)
    inside = healths_inside(app)
    for health, on_lifespan in inside:  # wrapped in code: a WSGI middleware's starts now
        if not on_lifespan:
            health.runtime.start_in_thread()
    if inside and not health_named():
        environment.warn_unknown()
        return  # the app's own Health answers: none is not put in front of it
    health = health_from_environment()
    if isinstance(app, HealthMiddleware | WSGIHealthMiddleware) and app.health is health:
        return  # already in front, as named
    if _serves_asgi(worker, app):
        setattr(worker, attribute, HealthMiddleware(app, health))  # starts on lifespan
    else:
        setattr(worker, attribute, WSGIHealthMiddleware(app, health))
        # This runs in the worker, after the fork: start now, so the worker's first
        # probe finds its first round done rather than "starting".
        health.runtime.start_in_thread()
