"""What every built-in check shares: its shape, argument validation and timing."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import ipaddress
import math
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any, Literal

from health_middleware.config.callables import needs_arguments
from health_middleware.model.result import CheckFunction, CheckResult

Check = CheckFunction
"""A check function, as each built-in check returns it: no arguments, sync or
``async def``, carrying its IETF ``component_type`` and its ``scope``."""
Scope = Literal["process", "instance"]


def typed(fn: Check, component_type: str, scope: Scope = "instance") -> Check:
    """Mark a check function with its IETF ``component_type`` and its ``scope``:
    ``"process"`` measures the process itself (run it in every worker), ``"instance"``
    something the whole server instance shares (a disk, a database, a broker)."""
    fn.component_type = component_type  # type: ignore[attr-defined]
    fn.scope = scope  # type: ignore[attr-defined]
    return fn


def ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def elapsed(started: float) -> CheckResult:
    """A pass whose observed value is the ``responseTime`` since ``started``, in ms."""
    return CheckResult(observed_value=ms(started), observed_unit="ms")


def need(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"this check needs {module}: pip install 'health_middleware[{extra}]'"
        ) from None


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def percent(name: str, value: object) -> float:
    number = _number(name, value)
    if not 0 < number <= 100:
        raise ValueError(f"{name} must be a percentage in (0, 100], got {value!r}")
    return number


def ordered(low: tuple[str, float | None], high: tuple[str, float | None]) -> None:
    """Thresholds that grade upwards: ``low`` (warn) must not be above ``high`` (fail)."""
    (low_name, low_value), (high_name, high_value) = low, high
    if low_value is not None and high_value is not None and low_value > high_value:
        raise ValueError(f"{low_name} must not be above {high_name}")


def whole(name: str, value: object, low: int, high: int | None = None) -> int:
    """A whole number in ``[low, high]``: TypeError for another type, ValueError outside."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return value


def port_number(value: object, name: str = "port") -> int:
    return whole(name, value, 1, 65535)


def text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


def host_name(name: str, value: object) -> str:
    """A host to connect to: a name or an address, with no port, scheme or path in it
    (an IPv6 address bare, without brackets); the port is an argument of its own."""
    host = text(name, value)
    if "/" in host or any(c.isspace() for c in host):
        raise ValueError(
            f"{name} must be a host name or address (e.g. 'db' or '10.0.0.5'), not a URL "
            f"or a path, got {host!r}"
        )
    if host.startswith("["):
        raise ValueError(
            f"{name} {host!r}: give an IPv6 address without brackets, and its port as port="
        )
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            bare, _, port = host.rpartition(":")
            raise ValueError(
                f"{name} {host!r} has a port in it: give the host alone and the port as "
                f"port=, e.g. {name}={bare!r}, port={port}"
            ) from None
    return host


def no_arguments(name: str, fn: object) -> None:
    """``fn`` must be callable with no arguments (where its signature can be read)."""
    signature = needs_arguments(fn)
    if signature is not None:
        raise TypeError(
            f"{name} must be callable with no arguments, but takes {signature}: give a "
            "function of none, e.g. lambda: sqlite3.connect(path, timeout=1)"
        )


def checked_url(
    name: str, value: object, schemes: tuple[str, ...], *, host: bool = True
) -> urllib.parse.SplitResult:
    """A URL of one of ``schemes`` (naming a host, with ``host``). The messages never
    repeat the URL: it may hold a password."""
    given = text(name, value)
    try:
        parts = urllib.parse.urlsplit(given)
    except ValueError:
        raise ValueError(f"{name} is not a well-formed URL") from None
    try:
        parts.port  # noqa: B018 - it raises for a port that is not a number
    except ValueError:
        raise ValueError(f"{name} has a port that is not a number from 0 to 65535") from None
    if parts.scheme.lower() not in schemes:
        listed = ", ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(f"{name} must be a URL of the scheme {listed}")
    if host and not parts.hostname:
        raise ValueError(f"{name} must name a host")
    return parts


def graded(value: float, warn: float | None, fail: float | None) -> str:
    if fail is not None and value >= fail:
        return "fail"
    if warn is not None and value >= warn:
        return "warn"
    return "pass"


@contextlib.asynccontextmanager
async def closing_stream(
    host: str, port: int, **options: Any
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A connection, always aborted on the way out: a health check has nothing left to
    flush, and a graceful close could wait on a peer that never answers. Bound the
    whole exchange with ``asyncio.timeout``."""
    reader, writer = await asyncio.open_connection(host, port, **options)
    try:
        yield reader, writer
    finally:
        writer.transport.abort()
