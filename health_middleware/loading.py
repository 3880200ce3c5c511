"""Import apps and Health objects from ``module:attribute`` strings (with errors that
name what was tried), for the one-liners and the gunicorn hook."""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any, Literal

from health_middleware import environment
from health_middleware.accesslog import quiet_probes
from health_middleware.callables import interface
from health_middleware.health import Health

logger = logging.getLogger("health_middleware")


def import_string(target: str, what: str) -> Any:
    """The object named by ``module:attribute`` (the attribute may be dotted)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{what} {target!r} must look like 'package.module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ImportError(f"{what} {target!r}: no module named {exc.name!r}") from exc
        raise  # the module exists but something it imports does not: show that
    found: Any = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise AttributeError(
                f"{what} {target!r}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    return found


def target_from(app: str | None, attribute: str | None) -> str:
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
    app = import_string(target, "app")
    if not callable(app):
        raise TypeError(f"app {target!r} is a {type(app).__name__}, not an application")
    found = interface(app)
    if found not in ("unknown", expected):
        other = "asgi" if expected == "wsgi" else "wsgi"
        raise TypeError(
            f"app {target!r} is a {found.upper()} application: "
            f"use health_middleware.serve:{other} for it"
        )
    return app


def health_from_environment() -> Health:
    """The ``Health`` named by ``HEALTH_MIDDLEWARE_HEALTH``, else one with no checks
    (with a warning); with ``HEALTH_MIDDLEWARE_QUIET_PROBES=1`` its paths leave the
    access logs. Unknown ``HEALTH_MIDDLEWARE_*`` variables are warned about.
    (``HEALTH_MIDDLEWARE_LISTEN`` is the runtime's, for every way of starting.)"""
    environment.warn_unknown()
    target = os.environ.get(environment.HEALTH)
    if not target:
        logger.warning(
            "%s is not set: serving a Health with no checks, so every endpoint passes "
            "whatever happens to the app's dependencies; set %s=package.module:attribute "
            "of your Health",
            environment.HEALTH,
            environment.HEALTH,
        )
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
