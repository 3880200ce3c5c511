"""What a callable is: async or not, an ASGI or a WSGI app, callable with no arguments,
or a factory of checks (which must be called to make one). Read when something is
registered or wrapped, never at a request."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_USAGE = "health_middleware_makes_check"  # the attribute a check factory carries


def is_async_callable(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004  # objects with an async __call__
    )


def interface(app: object) -> Literal["asgi", "wsgi", "factory", "unknown"]:
    """ASGI 3 apps are async callables, ASGI 2 apps classes taking a scope, WSGI apps
    plain callables of (environ, start_response); a function taking nothing is an app
    factory (``create_app``), not an app; anything else is "unknown"."""
    if is_async_callable(app):
        return "asgi"
    try:
        every = inspect.signature(app).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "unknown"
    parameters = [
        p
        for p in every
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    variadic = any(p.kind == p.VAR_POSITIONAL for p in every)
    if inspect.isclass(app) and len(parameters) == 1:
        return "asgi"  # ASGI 2: app(scope) returns the instance
    if len(parameters) == 2:
        return "wsgi"
    if not parameters and not variadic and not inspect.isclass(app):
        return "factory"
    return "unknown"


def refuse_factory(app: object, what: str) -> None:
    """Raise ``TypeError`` for an app factory given where an app is wanted: every
    health path would pass while every request to the app fails."""
    if interface(app) == "factory":
        raise TypeError(
            f"{what} {named(app)} takes no arguments: it looks like an app factory, not "
            f"an app; call it and pass the app it returns (e.g. app = {_name(app)}())"
        )


def _name(obj: object) -> str:
    name = getattr(obj, "__name__", None)
    return name if isinstance(name, str) else "create_app"


def named(obj: object) -> str:
    """How a callable is named in an error: its qualified name, else its class's."""
    name = getattr(obj, "__qualname__", None)
    return repr(name) if isinstance(name, str) else f"of type {type(obj).__qualname__!r}"


def needs_arguments(fn: object) -> str | None:
    """The signature of ``fn`` where it cannot be called with no arguments; None where
    it can, or where its signature cannot be read (some builtins and C types)."""
    try:
        signature = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    try:
        signature.bind()
    except TypeError:
        return str(signature)
    return None


def makes_check(usage: str) -> Callable[[F], F]:
    """Mark a function that makes a check (``checks.postgres``) with how to call it
    (``"checks.postgres(dsn)"``), so that registering the factory itself is refused."""

    def mark(factory: F) -> F:
        setattr(factory, _USAGE, usage)
        return factory

    return mark


def check_factory_usage(fn: object) -> str | None:
    """How to call ``fn`` where it is a check factory (see :func:`makes_check`), else None."""
    usage = getattr(fn, _USAGE, None)
    return usage if isinstance(usage, str) else None
