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
from health_middleware.config.callables import interface
from health_middleware.serve import health_from_environment, health_inside
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
    probe finds the first round done. An app already wrapped in code (the middleware
    itself, or anywhere inside it: Flask's ``app.wsgi_app``, a tracing middleware
    around it) is left as it is, the variable not asked, its refresher started now
    if it is WSGI (under ``--preload`` it was made in the master, where nothing
    starts).

    Args:
        worker: The gunicorn worker, as gunicorn passes it.
    """
    # gunicorn's own ASGI worker keeps the app in .asgi; every other worker in .wsgi.
    attribute = "asgi" if hasattr(worker, "asgi") else "wsgi"
    app = getattr(worker, attribute)
    serves_asgi = _serves_asgi(worker, app)
    inside = health_inside(app)
    if inside is not None:  # wrapped in code: HEALTH_MIDDLEWARE_HEALTH is not asked
        if not serves_asgi:  # an ASGI app's starts on its lifespan
            inside.runtime.start_in_thread()
        return
    health = health_from_environment()
    if serves_asgi:
        setattr(worker, attribute, HealthMiddleware(app, health))  # starts on lifespan
    else:
        setattr(worker, attribute, WSGIHealthMiddleware(app, health))
        # This runs in the worker, after the fork: start now, so the worker's first
        # probe finds its first round done rather than "starting".
        health.runtime.start_in_thread()
