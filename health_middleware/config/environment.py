"""The environment variables read by the package (and by its tests and benchmarks),
named in this one place, and the warning for a ``HEALTH_MIDDLEWARE_*`` variable that
none of them reads: a misspelt name would otherwise be ignored in silence."""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping

from health_middleware.config.validation import StartError, address

logger = logging.getLogger("health_middleware")

PREFIX = "HEALTH_MIDDLEWARE_"
APP = "HEALTH_MIDDLEWARE_APP"
HEALTH = "HEALTH_MIDDLEWARE_HEALTH"
NO_HEALTH = "none"  # HEALTH_MIDDLEWARE_HEALTH=none: a Health with no checks, on purpose
QUIET_PROBES = "HEALTH_MIDDLEWARE_QUIET_PROBES"
LISTEN = "HEALTH_MIDDLEWARE_LISTEN"
WATCH = "HEALTH_MIDDLEWARE_WATCH"
STATE_DIR = "HEALTH_MIDDLEWARE_STATE_DIR"

# Every variable that something reads: its name, and what it sets. A new variable is
# added here, or it is warned about as unknown.
KNOWN: dict[str, str] = {
    APP: "the app the one-liners wrap, 'package.module:attribute'",
    HEALTH: "the Health of the one-liners and the gunicorn hook, 'package.module:attribute' "
    "(or 'none': one with no checks)",
    QUIET_PROBES: "1: probe requests left out of the servers' access logs",
    LISTEN: "the probe port, 'host:port', opened as the runtime starts",
    WATCH: "the main port the probe port watches, a port or 'host:port'",
    STATE_DIR: "the folder of the instances' shared state",
    "HEALTH_MIDDLEWARE_REQUIRE_SERVICES": "the tests: 1 fails a test whose service is missing",
    "HEALTH_MIDDLEWARE_SOAK_SECONDS": "the tests: the long run's length",
    "HEALTH_MIDDLEWARE_FLOOD_SECONDS": "the tests: the probe-port flood's length",
    "HEALTH_MIDDLEWARE_SCREENSHOTS": "the tests: 1 keeps the status page's screenshots",
}

_warned: set[str] = set()  # the unknown names warned about in this process


def warn_unknown(environ: Mapping[str, str] | None = None) -> None:
    """Log a warning for each ``HEALTH_MIDDLEWARE_*`` variable (in any case) that is
    not in :data:`KNOWN`, once per name and process, naming the closest known one."""
    found = os.environ if environ is None else environ
    for name in sorted(found):
        upper = name.upper()
        if not upper.startswith(PREFIX) or name in KNOWN or name in _warned:
            continue
        _warned.add(name)
        suffixes = {known.removeprefix(PREFIX): known for known in KNOWN}
        close = difflib.get_close_matches(upper.removeprefix(PREFIX), suffixes, n=1, cutoff=0.6)
        hint = (
            f"did you mean {suffixes[close[0]]}?"
            if close
            else "the known ones are " + ", ".join(sorted(KNOWN))
        )
        logger.warning(
            "the environment variable %s is not one health_middleware reads, so it has "
            "no effect: %s",
            name,
            hint,
        )


def listen_address(value: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or a bare port (every address) as (host, port)."""
    return address(LISTEN, value, "0.0.0.0")


def listen_wish() -> tuple[str, int] | None:
    """Where ``HEALTH_MIDDLEWARE_LISTEN`` asks for the probe port, or None (unset or
    empty); ValueError when it is set to something else than an address."""
    value = os.environ.get(LISTEN)
    return listen_address(value) if value else None


def watch_wish() -> tuple[str, int] | None:
    """The main port ``HEALTH_MIDDLEWARE_WATCH`` asks the probe port to watch (a bare
    port is on 127.0.0.1), or None; ValueError when it is not an address."""
    value = os.environ.get(WATCH)
    return address(WATCH, value, "127.0.0.1") if value else None


def probe_port(
    listen: tuple[str, int] | None, watching: tuple[str, int] | None
) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
    """The probe port and the main port it watches, from ``HEALTH_MIDDLEWARE_LISTEN``
    and ``HEALTH_MIDDLEWARE_WATCH`` where the code (``listen``, ``watching``: what
    ``health.listen()`` asked for) did not say; ``StartError`` where they disagree
    with the code, or a watch has no probe port to run on, naming the fix."""
    try:
        wish, watch = listen_wish(), watch_wish()
    except ValueError as exc:
        raise StartError(str(exc)) from None
    if wish is not None and listen not in (None, wish):
        raise StartError(
            f"{LISTEN} asks for the probe port on {wish[0]}:{wish[1]}, but "
            f"health.listen() asked for {listen[0]}:{listen[1]}: a Health serves one "
            f"probe port; unset {LISTEN} or make them agree"
        )
    listen = listen or wish
    if watch is None:
        return listen, None
    if listen is None:
        raise StartError(
            f"{WATCH} needs a probe port to watch from: set {LISTEN}=host:port too "
            "(or call health.listen())"
        )
    if watching is not None and watching != watch:
        raise StartError(
            f"{WATCH} asks to watch {watch[0]}:{watch[1]}, but health.listen(watch=...) "
            f"watches {watching[0]}:{watching[1]}; unset {WATCH} or make them agree"
        )
    return listen, watch
