"""Validation of configuration values, and text made safe to publish.

Every option is checked here, once, when it is given: a wrong type raises
``TypeError``, a wrong value ``ValueError``, and the message names the option.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping


class StartError(Exception):
    """This set-up cannot start (an endpoint counting a group no check is in, a probe
    port that cannot be had): raised as the runtime starts in a process, so the
    server's start fails with the message (ASGI lifespan startup fails, a gunicorn
    worker fails to boot; a start by a first request fails that request)."""


# The shortest interval or timeout accepted: below it a check would re-render the
# snapshot hundreds of times a second for nothing.
MIN_SECONDS = 0.01


def positive(what: str, value: object, unit: str) -> float:
    """A positive, finite number of ``unit``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of {unit}, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{what} must be a positive, finite number of {unit}, got {value!r}")
    return number


def seconds(what: str, value: object, minimum: float = 0.0) -> float:
    """A positive, finite number of seconds, at least ``minimum``."""
    number = positive(what, value, "seconds")
    if number < minimum:
        raise ValueError(f"{what} must be at least {minimum:g} s, got {value!r}")
    return number


def period(what: str, value: object) -> float:
    """An interval or a timeout: at least :data:`MIN_SECONDS`."""
    return seconds(what, value, MIN_SECONDS)


def count(what: str, value: object) -> int:
    """A whole number of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a whole number, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{what} must be a whole number of at least 1, got {value!r}")
    return value


def port_number(what: str, value: object) -> int:
    """A TCP port: 1-65535, or 0 for one the system picks (tests)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a whole number, got {type(value).__name__}")
    if not 0 <= value <= 65535:
        raise ValueError(f"{what} must be a TCP port, 0 to 65535, got {value!r}")
    return value


def address(what: str, value: str, default_host: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or a bare port (on ``default_host``) as (host, port)."""
    host, colon, port = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]") if colon else ""
    if not port.isdigit() or not 0 < int(port) < 65536 or (colon and not host):
        raise ValueError(
            f"{what}={value!r} must look like 'host:port' or a bare port (e.g. 127.0.0.1:8000)"
        )
    return host or default_host, int(port)


def host_name(what: str, value: object) -> str:
    """An address or host name to bind, e.g. ``0.0.0.0``, ``::``, ``127.0.0.1``."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    if not value or not value.isprintable() or any(c.isspace() for c in value):
        raise ValueError(f"{what} must be an address or host name, got {value!r}")
    return value


def flag(what: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be True or False, got {type(value).__name__}")
    return value


def optional_text(what: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{what} must be a string or None, got {type(value).__name__}")
    return None if value is None else safe_text(value)


def texts(what: str, values: object) -> tuple[str, ...]:
    """Any iterable of strings (a generator too: it is read once), as a tuple."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"{what} must be a collection of strings, got {type(values).__name__}")
    found = tuple(values)
    if not all(isinstance(v, str) for v in found):
        raise TypeError(f"{what} must be a collection of strings")
    return tuple(safe_text(v) for v in found)


def text_map(what: str, values: object) -> dict[str, str]:
    """A mapping of strings to strings (``None`` is empty)."""
    if values is None:
        return {}
    if not isinstance(values, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    ):
        raise TypeError(f"{what} must map strings to strings")
    return {safe_text(k): safe_text(v) for k, v in values.items()}


def safe_text(text: str) -> str:
    """``text`` as valid Unicode: a lone surrogate (a file name that is not UTF-8, an
    environment variable decoded with ``surrogateescape``) becomes its escape
    (``\\udcff``), so nothing a check or the environment produces can make JSON
    encoding fail."""
    # str.encode, not text.encode: a str subclass from a check may override methods.
    return str.encode(text, "utf-8", "backslashreplace").decode("utf-8")


def drain_path(what: str, path: object) -> str:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{what} must be a path, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text:
        raise ValueError(f"{what} must be a non-empty path")
    return text


def delay(what: str, value: object) -> float:
    """A number of seconds, zero included (zero: off)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{what} must be zero or a positive number of seconds, got {value!r}")
    return number


def instance_name(what: str, value: object) -> str | None:
    """A name for a shared instance: letters, digits, '.', '_' and '-'."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string or None, got {type(value).__name__}")
    if (
        not value
        or len(value) > 60
        or not all(c.isascii() and (c.isalnum() or c in "._-") for c in value)
    ):
        raise ValueError(f"{what} must be 1 to 60 letters, digits, '.', '_' or '-', got {value!r}")
    return value
