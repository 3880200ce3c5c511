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

import inspect
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
    loaded, health = (
        load_app(target_from("asgi", app, attribute, request), "asgi"),
        health_from_environment(),
    )
    return HealthMiddleware(_wrapped(loaded), health)


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
    loaded, health = (
        load_app(target_from("wsgi", app, attribute, request), "wsgi"),
        health_from_environment(),
    )
    return WSGIHealthMiddleware(_wrapped(loaded), health)


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
            f'\'health_middleware.serve:{factory}("package.module", "attribute")\' '
            "(the module and the attribute apart: hypercorn reads every ':' as its own)"
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


def health_named() -> bool:
    """Whether ``HEALTH_MIDDLEWARE_HEALTH`` names a Health (it is neither unset nor
    ``none``): one the user asked for, to be put in front of the app."""
    return os.environ.get(environment.HEALTH, "").strip() not in ("", environment.NO_HEALTH)


def _wrapped(app: Any) -> Any:
    """``app``, once more refused if the ``Health`` to put in front of it is ``none``'s,
    with no checks, and would hide a ``Health`` of the app's own."""
    if not health_named() and healths_inside(app):
        raise TypeError(
            f"the app has health endpoints of its own (a Health in front of it, in "
            f"code), which {environment.HEALTH}={environment.NO_HEALTH} would hide "
            "behind one with no checks: serve the app as it is, without "
            f"health_middleware.serve, or name its Health in {environment.HEALTH}"
        )
    return app


# Where apps keep the app they wrap: Flask's wsgi_app, most middlewares' app or
# application, OpenTelemetry's wsgi, gunicorn's workers' wsgi and asgi, Starlette's
# built stack, functools.wraps' __wrapped__.
_INNER = (
    "wsgi_app",
    "app",
    "application",
    "wsgi",
    "asgi",
    "_app",
    "middleware_stack",
    "__wrapped__",
)
_LOOKS = 64  # objects looked at, at most: an app is a short chain of wrappers


def healths_inside(app: object) -> list[tuple[Health, bool]]:
    """Each ``Health`` whose middleware ``app`` is or wraps (Flask's
    ``app.wsgi_app = WSGIHealthMiddleware(...)``, a tracing middleware around it,
    Starlette's ``add_middleware`` before its stack is built), with whether its
    middleware starts on its own (ASGI, on the lifespan) rather than needing a start
    (WSGI). Attributes are read as stored (``inspect.getattr_static``): no property,
    ``__getattr__`` or lazy proxy runs."""
    found: list[tuple[Health, bool]] = []
    seen: set[int] = set()
    queue = [app]
    while queue and len(seen) < _LOOKS:
        obj = queue.pop(0)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, HealthMiddleware | WSGIHealthMiddleware):
            found.append((obj.health, isinstance(obj, HealthMiddleware)))
        entries = _stored(obj, "user_middleware")
        for entry in entries if isinstance(entries, list | tuple) else ():
            if _stored(entry, "cls") is HealthMiddleware:
                args, kwargs = _stored(entry, "args"), _stored(entry, "kwargs")
                given = [
                    *(args if isinstance(args, tuple | list) else ()),
                    *(kwargs.values() if isinstance(kwargs, dict) else ()),
                ]
                found += [(h, True) for h in given if isinstance(h, Health)]
        queue += [inner for name in _INNER if (inner := _stored(obj, name)) is not None]
    return found


def _stored(obj: object, name: str) -> Any:
    """``obj``'s attribute ``name`` as stored in the object or its class, or None."""
    try:
        value = inspect.getattr_static(obj, name, None)
    except Exception:  # an object that will not be looked into
        return None
    return None if isinstance(value, property | staticmethod | classmethod) else value


def health_from_environment() -> Health:
    """The ``Health`` the ``HEALTH_MIDDLEWARE_HEALTH`` environment variable names
    (``"package.module:attribute"``); ``none``: one with no checks.

    With ``HEALTH_MIDDLEWARE_QUIET_PROBES=1`` its paths leave the access logs.
    Unknown ``HEALTH_MIDDLEWARE_*`` variables are warned about.

    Raises:
        StartError: The variable is not set (or empty) or reads ``None``: every
            endpoint would pass whatever happens to the app's dependencies; the
            message names the fix. A Health it names that has no checks as it starts
            is refused then.
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
    target = target.strip()
    if target == environment.NO_HEALTH:
        health = Health()
    elif target.lower() == environment.NO_HEALTH:  # None: a value rendered from nothing
        raise StartError(
            f"{environment.HEALTH}={target!r} reads as a value rendered from nothing "
            f"(Python's None, a template's unset variable): name your Health "
            f"({environment.HEALTH}=package.module:attribute), or write "
            f"{environment.HEALTH}={environment.NO_HEALTH} (lower case) to serve the "
            "endpoints with no checks on purpose"
        )
    else:
        health = import_string(target, environment.HEALTH)
        if not isinstance(health, Health):
            raise TypeError(
                f"{environment.HEALTH} {target!r} is a {type(health).__name__}, not a Health"
            )
        health.registry.checks_required = (
            f"{environment.HEALTH}={target} names a Health with no checks: every "
            "endpoint would pass whatever happens to the app's dependencies. Register "
            "its checks before the app starts (in that module, or in the app's "
            f"lifespan), or write {environment.HEALTH}={environment.NO_HEALTH} to serve "
            "the endpoints with no checks on purpose"
        )
    if os.environ.get(environment.QUIET_PROBES) == "1":
        quiet_probes(health.paths)
    return health
