"""Import apps and Health objects from ``module:attribute`` strings, and tell ASGI
apps from WSGI apps, with errors that name what was tried."""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Any, Literal

from health_middleware.accesslog import quiet_probes
from health_middleware.check import is_async_callable
from health_middleware.health import Health
from health_middleware.validation import address

APP_VARIABLE = "HEALTH_MIDDLEWARE_APP"
HEALTH_VARIABLE = "HEALTH_MIDDLEWARE_HEALTH"
QUIET_VARIABLE = "HEALTH_MIDDLEWARE_QUIET_PROBES"
LISTEN_VARIABLE = "HEALTH_MIDDLEWARE_LISTEN"
WATCH_VARIABLE = "HEALTH_MIDDLEWARE_WATCH"


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


def interface(app: object) -> Literal["asgi", "wsgi", "unknown"]:
    """ASGI 3 apps are async callables, ASGI 2 apps classes taking a scope, WSGI apps
    plain callables of (environ, start_response)."""
    if is_async_callable(app):
        return "asgi"
    try:
        parameters = [
            p
            for p in inspect.signature(app).parameters.values()  # type: ignore[arg-type]
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return "unknown"
    if inspect.isclass(app) and len(parameters) == 1:
        return "asgi"  # ASGI 2: app(scope) returns the instance
    if len(parameters) == 2:
        return "wsgi"
    return "unknown"


def target_from(app: str | None, attribute: str | None) -> str:
    if app is None:
        app = os.environ.get(APP_VARIABLE)
        if not app:
            raise ValueError(
                f"no app to wrap: set {APP_VARIABLE}=package.module:attribute, "
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


def listen_address(value: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or a bare port (every address) as (host, port)."""
    return address(LISTEN_VARIABLE, value, "0.0.0.0")


def health_from_environment() -> Health:
    """The ``Health`` named by ``HEALTH_MIDDLEWARE_HEALTH``, else one with no checks;
    with ``HEALTH_MIDDLEWARE_QUIET_PROBES=1`` its paths leave the access logs, with
    ``HEALTH_MIDDLEWARE_LISTEN=host:port`` it also serves them on that port, and with
    ``HEALTH_MIDDLEWARE_WATCH=port`` (or ``host:port``) that port watches the main one."""
    target = os.environ.get(HEALTH_VARIABLE)
    health = Health() if not target else import_string(target, HEALTH_VARIABLE)
    if not isinstance(health, Health):
        raise TypeError(f"{HEALTH_VARIABLE} {target!r} is a {type(health).__name__}, not a Health")
    if os.environ.get(QUIET_VARIABLE) == "1":
        quiet_probes(health.paths)
    listen, watch = os.environ.get(LISTEN_VARIABLE), os.environ.get(WATCH_VARIABLE) or None
    if watch is not None:
        address(WATCH_VARIABLE, watch, "127.0.0.1")  # refused here, naming the variable
    if watch is not None and not listen and health.listen_address is None:
        raise ValueError(
            f"{WATCH_VARIABLE}={watch!r} needs a probe port to watch from: "
            f"set {LISTEN_VARIABLE}=host:port too"
        )
    if listen:
        host, port = listen_address(listen)
        if health.listen_address != (host, port):  # the same wish twice is one
            health.listen(port, host, watch=watch)
            return health
    if watch is not None and health.runtime.watch is None:
        raise ValueError(
            f"{WATCH_VARIABLE}={watch!r}: this Health's probe port was set in code "
            "without a watch; pass watch= to its listen() call instead"
        )
    return health
