"""One line for any server: factories that wrap an app named by a string.

```sh
HEALTH_MIDDLEWARE_APP=proj.asgi:app uvicorn health_middleware.serve:asgi --factory
gunicorn 'health_middleware.serve:wsgi("proj.wsgi:application")'
hypercorn 'health_middleware.serve:asgi("proj.asgi", "app")'
granian --interface asgi --factory health_middleware.serve:asgi
```

``HEALTH_MIDDLEWARE_HEALTH=proj.health:health`` names the ``Health`` to use (``none``:
one with no checks, on purpose; unset, the start is refused, since every endpoint would
pass whatever happens); ``HEALTH_MIDDLEWARE_QUIET_PROBES=1`` keeps probes out of the access
logs. A factory only imports and wraps: nothing starts (gunicorn ``--preload`` runs it
in the master); the refresher starts in each worker. The Servers pages show a line
for each server.

The gunicorn hook (``health_middleware.gunicorn``) takes its ``Health`` from here too.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from health_middleware.asgi import HealthMiddleware
from health_middleware.config import environment
from health_middleware.config.callables import interface
from health_middleware.config.imports import import_string
from health_middleware.config.validation import StartError
from health_middleware.health import Health
from health_middleware.web.accesslog import quiet_probes
from health_middleware.wsgi import WSGIHealthMiddleware

__all__ = ["asgi", "health_from_environment", "wsgi"]


def asgi(
    app: str | None = None, attribute: str | None = None, *request: object
) -> HealthMiddleware:
    """The ASGI app named by a string, with the health endpoints in front of it.

    Args:
        app: ``"package.module:attribute"`` of the app, or the module alone with
            ``attribute`` (as hypercorn needs it); ``None``: the
            ``HEALTH_MIDDLEWARE_APP`` environment variable.
        attribute: The app's attribute in the module ``app`` names, or None.
        *request: Never given by a right command: a server that calls the factory as
            if it were the app (uvicorn or granian without ``--factory``, hypercorn or
            gunicorn given ``serve:asgi`` without the call) passes a request's
            arguments, and is answered with a ``TypeError`` that names the fix.

    Returns:
        The app behind ``HealthMiddleware``, with the ``Health`` of
            ``health_from_environment()``.

    Raises:
        ValueError: No app given and ``HEALTH_MIDDLEWARE_APP`` not set, or a name
            not of the form ``"package.module:attribute"``.
        TypeError: The name is not a string, or names no ASGI app (for a WSGI app
            the message names ``serve:wsgi``; an app factory is refused), or the
            factory was called with a request as if it were the app.
        ImportError: The module cannot be imported.
        AttributeError: The module has no such attribute.
    """
    return HealthMiddleware(
        load_app(target_from("asgi", app, attribute, request), "asgi"),
        health_from_environment(),
    )


def wsgi(
    app: str | None = None, attribute: str | None = None, *request: object
) -> WSGIHealthMiddleware:
    """The WSGI app named by a string, with the health endpoints in front of it:
    ``asgi``'s counterpart, raising as it does (``TypeError`` naming ``serve:asgi`` for
    an ASGI app).

    Args:
        app: ``"package.module:attribute"`` of the app, or the module alone with
            ``attribute``; ``None``: the ``HEALTH_MIDDLEWARE_APP`` environment
            variable.
        attribute: The app's attribute in the module ``app`` names, or None.
        *request: As ``asgi``'s: given only by a server that calls the factory as the
            app, and answered with a ``TypeError`` that names the fix.

    Returns:
        The app behind ``WSGIHealthMiddleware``, with the ``Health`` of
            ``health_from_environment()``.
    """
    return WSGIHealthMiddleware(
        load_app(target_from("wsgi", app, attribute, request), "wsgi"),
        health_from_environment(),
    )


def target_from(
    factory: Literal["asgi", "wsgi"],
    app: object,
    attribute: object,
    request: tuple[object, ...] = (),
) -> str:
    """The ``"module:attribute"`` a factory's arguments (or ``HEALTH_MIDDLEWARE_APP``)
    name; a factory called with a request (a scope or environ first, or more than two
    arguments) is refused naming the server option or syntax that calls it."""
    if request or isinstance(app, dict):
        raise TypeError(
            f"health_middleware.serve:{factory} was called as the app, with a request; "
            "it is a factory that makes the app: with uvicorn or granian add --factory; "
            "with hypercorn or gunicorn call it in the command, "
            f"'health_middleware.serve:{factory}(\"package.module:attribute\")'"
        )
    if app is None:
        app = os.environ.get(environment.APP)
        if not app:
            raise ValueError(
                f"no app to wrap: set {environment.APP}=package.module:attribute, "
                "or pass the app string to the factory"
            )
    if not isinstance(app, str) or (attribute is not None and not isinstance(attribute, str)):
        raise TypeError("the app must be given as a string: 'package.module:attribute'")
    return app if attribute is None else f"{app}:{attribute}"


def load_app(target: str, expected: Literal["asgi", "wsgi"]) -> Any:
    """The app ``target`` names, refused where it is not an ``expected`` app."""
    app = import_string(target, "app")
    if not callable(app):
        raise TypeError(f"app {target!r} is a {type(app).__name__}, not an application")
    found = interface(app)
    if found == "factory":
        raise TypeError(
            f"app {target!r} takes no arguments: it looks like an app factory, not an "
            "app; name the app it makes (package.module:app), or with uvicorn run your "
            "own factory with --factory"
        )
    if found not in ("unknown", expected):
        other = "asgi" if expected == "wsgi" else "wsgi"
        raise TypeError(
            f"app {target!r} is a {found.upper()} application: "
            f"use health_middleware.serve:{other} for it"
        )
    return app


def health_from_environment() -> Health:
    """The ``Health`` the ``HEALTH_MIDDLEWARE_HEALTH`` environment variable names
    (``"package.module:attribute"``); ``none``: one with no checks.

    With ``HEALTH_MIDDLEWARE_QUIET_PROBES=1`` its paths leave the access logs.
    Unknown ``HEALTH_MIDDLEWARE_*`` variables are warned about.

    Raises:
        StartError: The variable is not set (or empty): every endpoint would pass
            whatever happens to the app's dependencies, a forgotten variable served as
            health; the message names the fix.
        ValueError: A name not of the form ``"package.module:attribute"``.
        TypeError: The variable names something that is not a ``Health``.
        ImportError: The module cannot be imported.
        AttributeError: The module has no such attribute.
    """
    # HEALTH_MIDDLEWARE_LISTEN is the runtime's, for every way of starting.
    environment.warn_unknown()
    target = os.environ.get(environment.HEALTH)
    if not target or not target.strip():
        raise StartError(
            f"{environment.HEALTH} is not set: it names the Health with your checks "
            f"({environment.HEALTH}=package.module:attribute); without it every endpoint "
            "would pass whatever happens to the app's dependencies. Set it, or set "
            f"{environment.HEALTH}={environment.NO_HEALTH} to serve the endpoints with no "
            "checks on purpose"
        )
    if target.strip().lower() == environment.NO_HEALTH:
        health = Health()
    else:
        health = import_string(target, environment.HEALTH)
    if not isinstance(health, Health):
        raise TypeError(
            f"{environment.HEALTH} {target!r} is a {type(health).__name__}, not a Health"
        )
    if os.environ.get(environment.QUIET_PROBES) == "1":
        quiet_probes(health.paths)
    return health
