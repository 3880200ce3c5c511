"""Check and report statuses: the three IETF values, their aliases, and aggregation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Status = Literal["pass", "warn", "fail"]

# draft-inadarei-api-health-check-06, "status": ok/up are pass, error/down are fail.
_ALIASES: dict[str, Status] = {
    "pass": "pass",
    "ok": "pass",
    "up": "pass",
    "warn": "warn",
    "fail": "fail",
    "error": "fail",
    "down": "fail",
}


def normalise_status(value: object) -> Status:
    """Return the IETF status for ``value`` (any case, aliases accepted) or raise."""
    if not isinstance(value, str):
        raise TypeError(f"a status must be a string such as 'pass', got {type(value).__name__}")
    status = _ALIASES.get(value.lower())
    if status is None:
        raise ValueError(
            f"unknown status {value!r}: use 'pass', 'warn' or 'fail' "
            "(or the aliases 'ok', 'up', 'error', 'down')"
        )
    return status


def aggregate(outcomes: Iterable[tuple[bool, Status]]) -> Status:
    """Combine ``(critical, status)`` pairs: a critical fail fails the whole,
    a non-critical fail or any warn degrades it to warn, otherwise pass."""
    result: Status = "pass"
    for critical, status in outcomes:
        if status == "fail":
            if critical:
                return "fail"
            result = "warn"
        elif status == "warn":
            result = "warn"
    return result
