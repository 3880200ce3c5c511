"""A registered check: its validated options, and the state of its runs in this process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from health_middleware.result import Outcome
from health_middleware.status import Status

CheckFunction = Callable[[], Any]

# "component" or "component:measurement" (draft-inadarei-api-health-check-06, "checks").
_NAME = re.compile(r"[A-Za-z0-9_.\-]+(?::[A-Za-z0-9_.\-/]+)?")
_TAG = re.compile(r"[A-Za-z0-9_.\-]+")


def positive(what: str, value: object, unit: str) -> float:
    """Validate a positive, finite number of ``unit``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of {unit}, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{what} must be a positive, finite number of {unit}, got {value!r}")
    return number


def seconds(what: str, value: object) -> float:
    """Validate a positive, finite number of seconds."""
    return positive(what, value, "seconds")


def count(what: str, value: object) -> int:
    """Validate a positive whole number."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a whole number of at least 1, got {value!r}")
    return value


def is_async_callable(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004  # objects with an async __call__
    )


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    fn: CheckFunction
    is_async: bool
    interval: float
    timeout: float
    critical: bool
    tags: frozenset[str]
    component_type: str
    failure_threshold: int
    success_threshold: int
    component_id: str | None
    affected_endpoints: tuple[str, ...]

    @classmethod
    def build(
        cls,
        name: object,
        fn: object,
        *,
        interval: object,
        timeout: object,
        critical: object = True,
        tags: Iterable[str] = (),
        component_type: object = "component",
        failure_threshold: object = 1,
        success_threshold: object = 1,
        component_id: object = None,
        affected_endpoints: Iterable[str] = (),
    ) -> Check:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"check name {name!r} must be 'component' or 'component:measurement' "
                "(letters, digits, '_', '.', '-'; e.g. 'postgres:responseTime')"
            )
        if not callable(fn):
            raise TypeError(f"check {name!r} must be callable, got {type(fn).__name__}")
        if not isinstance(critical, bool):
            raise TypeError(f"check {name!r}: critical must be True or False")
        if isinstance(tags, str):
            raise TypeError(f"check {name!r}: tags must be a collection of strings, not a string")
        tag_set = frozenset(tags)
        for tag in tag_set:
            if not isinstance(tag, str) or not _TAG.fullmatch(tag):
                raise ValueError(f"check {name!r}: tag {tag!r} must be a simple word")
        if not isinstance(component_type, str) or not component_type:
            raise TypeError(f"check {name!r}: component_type must be a non-empty string")
        if component_id is not None and not isinstance(component_id, str):
            raise TypeError(f"check {name!r}: component_id must be a string")
        if isinstance(affected_endpoints, str) or not all(
            isinstance(e, str) for e in affected_endpoints
        ):
            raise TypeError(f"check {name!r}: affected_endpoints must be a collection of strings")
        return cls(
            name=name,
            fn=fn,
            is_async=is_async_callable(fn),
            interval=seconds(f"check {name!r}: interval", interval),
            timeout=seconds(f"check {name!r}: timeout", timeout),
            critical=critical,
            tags=tag_set,
            component_type=component_type,
            failure_threshold=count(f"check {name!r}: failure_threshold", failure_threshold),
            success_threshold=count(f"check {name!r}: success_threshold", success_threshold),
            component_id=component_id,
            affected_endpoints=tuple(affected_endpoints),
        )


Inflight = asyncio.Future[Any] | concurrent.futures.Future[Any]


class CheckState:
    """What this process knows of one check: the reported outcome (after flap
    damping), the run in flight, and counters. Written by the refresher only."""

    __slots__ = (
        "check",
        "failures",
        "inflight",
        "last_success",
        "passes",
        "reported",
        "runs",
        "trusted",
    )

    def __init__(self, check: Check) -> None:
        self.check = check
        self.reset()

    def reset(self) -> None:
        self.reported: Outcome | None = None
        self.last_success: float | None = None  # when a run last passed or warned
        self.inflight: Inflight | None = None
        self.failures = 0
        self.passes = 0
        self.runs = 0
        # Has a sync run of this check ever come back from its thread? Until then its
        # runs may hold only part of the thread pool (see pool.py).
        self.trusted = False

    def busy(self) -> bool:
        return self.inflight is not None and not self.inflight.done()

    def record(self, outcome: Outcome) -> tuple[Status | None, Status] | None:
        """Take a finished run; return ``(old, new)`` when the reported status
        changes (the first result is a change from ``None``), else None."""
        if outcome.status == "fail":
            self.failures += 1
            self.passes = 0
        else:
            self.passes += 1
            self.failures = 0
            self.last_success = outcome.time
        previous = self.reported
        if previous is None:
            self.reported = outcome
            return (None, outcome.status)
        failing, was_failing = outcome.status == "fail", previous.status == "fail"
        if failing and not was_failing and self.failures < self.check.failure_threshold:
            return None  # damped: keep reporting the last good outcome
        if was_failing and not failing and self.passes < self.check.success_threshold:
            return None  # damped: keep reporting the failure
        self.reported = outcome
        return (previous.status, outcome.status) if previous.status != outcome.status else None
