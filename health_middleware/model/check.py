"""A registered check: its validated options, and the state of its runs in this process."""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import orjson

from health_middleware.config.callables import (
    check_factory_usage,
    is_async_callable,
    needs_arguments,
)
from health_middleware.config.validation import count, flag, optional_text, period, texts
from health_middleware.model.result import CheckFunction, Outcome
from health_middleware.model.status import Status

# "component" or "component:measurement" (draft-inadarei-api-health-check-06, "checks").
_NAME = re.compile(r"[A-Za-z0-9_.\-]+(?::[A-Za-z0-9_.\-/]+)?")
_TAG = re.compile(r"[A-Za-z0-9_.\-]+")

# Where a check runs under several worker processes: once per interval for the whole
# server instance (a dependency: the default), or in every worker (the process itself).
Scope = Literal["instance", "process"]
INSTANCE: Scope = "instance"
PROCESS: Scope = "process"


def _called(value: object) -> str:
    """What was given where a check function was due, and the likely fix: a
    coroutine (closed, so it is not reported as never awaited) is an ``async def``
    called (``check()`` for ``check``); any other value, likely a function's result."""
    if inspect.iscoroutine(value):
        name = value.__name__
        value.close()
        return (
            f"a coroutine, what calling {name}() returns: pass the async function "
            f"itself, without the call ({name}, or client.{name} for a method)"
        )
    return (
        f"{type(value).__name__} {value!r:.60}: pass a function of no arguments (the "
        "function itself, check, not what calling it returns, check())"
    )


class CheckOptions(TypedDict, total=False):
    """The keyword options of ``Health.add_check`` and ``@health.check``: declared
    once here; ``Check.build`` validates them and applies the defaults."""

    interval: float | None  # None: the Health's interval
    timeout: float | None  # None: the Health's timeout
    critical: bool  # True
    tags: Iterable[str]  # ()
    component_type: str | None  # None: fn.component_type, else "component"
    failure_threshold: int  # 1
    success_threshold: int  # 1
    component_id: str | None  # None
    affected_endpoints: Iterable[str]  # ()
    scope: Scope | None  # None: fn.scope, else "instance"


@dataclass(frozen=True, slots=True)
class Check:
    """A validated check: ``CheckOptions`` with every default applied."""

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
    scope: Scope = INSTANCE

    @property
    def shared(self) -> bool:
        """Whether its runs are shared by the workers of a server instance."""
        return self.scope == INSTANCE

    @classmethod
    def build(
        cls,
        name: object,
        fn: object,
        options: CheckOptions,
        *,
        interval: float,
        timeout: float,
    ) -> Check:
        """Validate ``options``; ``interval`` and ``timeout`` are the defaults."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"check name {name!r} must be 'component' or 'component:measurement' "
                "(letters, digits, '_', '.', '-'; e.g. 'postgres:responseTime')"
            )
        if not callable(fn):
            raise TypeError(f"check {name!r} must be callable, got {_called(fn)}")
        usage = check_factory_usage(fn)
        if usage is not None:
            factory = usage.partition("(")[0]
            raise TypeError(f"check {name!r}: {factory} makes a check: call it, {usage}")
        signature = needs_arguments(fn)
        if signature is not None:
            raise TypeError(
                f"check {name!r} must be callable with no arguments, but takes {signature}: "
                "give a function of none (e.g. lambda: check(value)), or bind its "
                "arguments with functools.partial"
            )
        what = f"check {name!r}:"
        unknown = sorted(set(options) - set(CheckOptions.__annotations__))
        if unknown:
            known = sorted(CheckOptions.__annotations__)
            close = difflib.get_close_matches(unknown[0], known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(
                f"{what} unknown option {unknown[0]!r}{hint}; the options are {', '.join(known)}"
            )
        tag_set = frozenset(texts(f"{what} tags", options.get("tags", ())))
        for tag in tag_set:
            if not _TAG.fullmatch(tag):
                raise ValueError(f"{what} tag {tag!r} must be a simple word")
        component_type: object = options.get("component_type")
        if component_type is None:
            component_type = getattr(fn, "component_type", "component")
        if not isinstance(component_type, str) or not component_type:
            raise TypeError(f"{what} component_type must be a non-empty string")
        chosen_interval, chosen_timeout = options.get("interval"), options.get("timeout")
        scope: object = options.get("scope")
        if scope is None:
            scope = getattr(fn, "scope", INSTANCE)
        if scope not in (INSTANCE, PROCESS):
            raise ValueError(f"{what} scope must be 'instance' or 'process', got {scope!r}")
        return cls(
            name=name,
            fn=fn,
            is_async=is_async_callable(fn),
            interval=period(
                f"{what} interval", interval if chosen_interval is None else chosen_interval
            ),
            timeout=period(
                f"{what} timeout", timeout if chosen_timeout is None else chosen_timeout
            ),
            critical=flag(f"{what} critical", options.get("critical", True)),
            tags=tag_set,
            component_type=optional_text(f"{what} component_type", component_type) or "",
            failure_threshold=count(
                f"{what} failure_threshold", options.get("failure_threshold", 1)
            ),
            success_threshold=count(
                f"{what} success_threshold", options.get("success_threshold", 1)
            ),
            component_id=optional_text(f"{what} component_id", options.get("component_id")),
            affected_endpoints=texts(
                f"{what} affected_endpoints", options.get("affected_endpoints", ())
            ),
            scope=INSTANCE if scope == INSTANCE else PROCESS,
        )


class CheckState:
    """What this process knows of one check: the reported outcome (after flap
    damping) and the counters behind it. Written by the refresher only."""

    __slots__ = (
        "blocking",
        "changed_at",
        "check",
        "failures",
        "last_success",
        "passes",
        "ran_here",
        "reported",
        "slow",
    )

    def __init__(self, check: Check) -> None:
        self.check = check
        self.reset()

    def reset(self) -> None:
        self.reported: Outcome | None = None
        self.last_success: float | None = None  # when a run last passed or warned
        self.failures = 0
        self.passes = 0
        self.changed_at: float | None = None  # when the reported status last changed
        # Whether this process ran the reported result (else another worker of the
        # instance did): per-process exporters report an instance check only here.
        self.ran_here = False
        self.slow = False  # its last run here took more than half its timeout
        self.blocking = False  # its last run here held the event loop past its timeout

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
        self.ran_here = True
        previous = self.reported
        if previous is None:
            self.reported, self.changed_at = outcome, outcome.time
            return (None, outcome.status)
        failing, was_failing = outcome.status == "fail", previous.status == "fail"
        if failing and not was_failing and self.failures < self.check.failure_threshold:
            return None  # damped: keep reporting the last good outcome
        if was_failing and not failing and self.passes < self.check.success_threshold:
            return None  # damped: keep reporting the failure
        self.reported = outcome
        if previous.status == outcome.status:
            return None
        self.changed_at = outcome.time
        return (previous.status, outcome.status)

    # -- shared by the workers of an instance (shared.py) --------------------------

    def to_record(self) -> bytes:
        """This state as the record another worker adopts."""
        reported = self.reported
        return orjson.dumps(
            {
                "reported": None if reported is None else _outcome_fields(reported),
                "failures": self.failures,
                "passes": self.passes,
                "last_success": self.last_success,
                "changed_at": self.changed_at,
            }
        )

    def adopt(self, record: bytes) -> tuple[Status | None, Status] | None:
        """Take the state another worker published; return ``(old, new)`` when the
        reported status changes. A record that does not parse is ignored."""
        try:
            fields = orjson.loads(record)
            reported = fields["reported"]
            outcome = None if reported is None else _outcome(reported)
            failures, passes = int(fields["failures"]), int(fields["passes"])
            last_success = fields["last_success"]
            changed_at = fields.get("changed_at")
            changed_at = None if changed_at is None else float(changed_at)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        previous = self.reported
        self.reported, self.failures, self.passes = outcome, failures, passes
        self.last_success = None if last_success is None else float(last_success)
        self.changed_at, self.ran_here = changed_at, False
        if outcome is None or (previous is not None and previous.status == outcome.status):
            return None
        return (None if previous is None else previous.status, outcome.status)


def _outcome(fields: dict[str, Any]) -> Outcome:
    if fields["status"] not in ("pass", "warn", "fail"):
        raise ValueError("not a status")
    return Outcome(
        **{**fields, "affected_endpoints": tuple(fields["affected_endpoints"])},
    )


def _outcome_fields(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "time": outcome.time,
        "duration": outcome.duration,
        "observed_value": outcome.observed_value,
        "observed_unit": outcome.observed_unit,
        "output": outcome.output,
        "detail": outcome.detail,
        "component_id": outcome.component_id,
        "affected_endpoints": list(outcome.affected_endpoints),
        "links": dict(outcome.links),
    }
