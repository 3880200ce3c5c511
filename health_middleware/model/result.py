"""What a check returns, and how any return value becomes an outcome."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from health_middleware.config.validation import optional_text, safe_text, text_map, texts
from health_middleware.model.status import Status, normalise_status

# What a check runs: a function of no arguments, sync or async; it returns anything
# ``from_return`` accepts (a CheckResult, a bool, a status string, None) or raises.
CheckFunction = Callable[[], Any]

# An observed value larger than this, once encoded, is refused: a health report is no
# place for a payload, and a check that returns one is misbehaving.
MAX_OBSERVED_BYTES = 4096


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What a check returns for a result with more than pass or fail: the IETF
    fields of one check's result. Text is made safe as it is given (no invalid
    Unicode reaches a response).

    Attributes:
        status: ``"pass"``, ``"warn"`` or ``"fail"``, in any case, or the draft's
            aliases ``"ok"`` and ``"up"`` (pass), ``"error"`` and ``"down"`` (fail);
            stored normalised (``"pass"``).
        observed_value: The IETF ``observedValue``: what the check measured. It must
            be JSON-serialisable and at most 4 KiB once encoded (the run fails,
            saying so, otherwise).
        observed_unit: The IETF ``observedUnit``, e.g. ``"ms"`` or ``"percent"``.
        output: The IETF ``output``: why the check is not passing, shown off pass.
        component_id: The IETF ``componentId``, in place of the check's own.
        affected_endpoints: The IETF ``affectedEndpoints``, in place of the check's
            own, shown off pass.
        links: The IETF ``links`` of the check's entry.
    """

    status: str = "pass"
    observed_value: Any = None
    observed_unit: str | None = None
    output: str | None = None
    component_id: str | None = None
    affected_endpoints: Iterable[str] = ()
    links: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Text is made safe here, where a check's words enter: nothing a check returns
        # can make a later render fail.
        set_field = object.__setattr__
        set_field(self, "status", normalise_status(self.status))
        for name in ("observed_unit", "output", "component_id"):
            set_field(self, name, optional_text(f"CheckResult.{name}", getattr(self, name)))
        set_field(
            self,
            "affected_endpoints",
            texts("CheckResult.affected_endpoints", self.affected_endpoints),
        )
        set_field(self, "links", text_map("CheckResult.links", self.links))


@dataclass(frozen=True, slots=True)
class Outcome:
    """One finished run of a check, ready to render.

    ``output`` is safe to publish (the kind of a failure, never its message);
    ``detail`` is the full text, published only where the user opts in.
    """

    status: Status
    time: float
    duration: float
    observed_value: Any = None
    observed_unit: str | None = None
    output: str | None = None
    detail: str | None = None
    component_id: str | None = None
    affected_endpoints: tuple[str, ...] = ()
    links: Mapping[str, str] = field(default_factory=dict)


class NoResult:
    """What a check returns while it has nothing to report yet (a heartbeat never
    beaten in this process): the refresher records nothing, so the check stays
    "starting" as before its first run. A one-shot run (``Health.run_once``, the
    ``check`` command), which must report every check, reports it as ``Pending``:
    a warn whose output is ``reason``."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Pending(Outcome):
    """The outcome of a run that returned ``NoResult``: never recorded by the
    refresher; a warn in a one-shot run's report."""


# User code runs while a result is described (__repr__, __str__, even a metaclass's
# __name__): it may raise anything, KeyboardInterrupt and SystemExit included, and
# none of it may escape onto the refresher's loop.


def _safe_repr(value: object, limit: int = 200) -> str:
    try:
        text = safe_text(repr(value))
    except BaseException as exc:
        text = f"<unrepresentable {_kind(value)}: {_kind(exc)}>"
    return text if len(text) <= limit else text[:limit] + "..."


def _exception_detail(exc: BaseException) -> str:
    try:
        message = safe_text(str(exc))
    except BaseException:
        message = "<message unavailable>"
    name = _kind(exc)
    return f"{name}: {message}" if message else name


def _kind(value: object) -> str:
    """The type's name, safe to publish (a class can be given any name, and a
    metaclass can make reading it raise)."""
    try:
        name = type.__dict__["__name__"].__get__(type(value))
        return safe_text(name) if isinstance(name, str) else "object"
    except BaseException:
        return "object"


def unrepresentable(now: float, duration: float) -> Outcome:
    """A result whose description raised: the check fails, saying so."""
    return _failed(now, duration, "unrepresentable result")


def _failed(now: float, duration: float, output: str, detail: str | None = None) -> Outcome:
    return Outcome("fail", now, duration, output=output, detail=detail or output)


def from_exception(exc: BaseException, now: float, duration: float) -> Outcome:
    """A check raised: publish the exception's type, keep its message for opt-in."""
    return _failed(now, duration, _kind(exc), _exception_detail(exc))


def from_timeout(timeout: float, now: float, duration: float) -> Outcome:
    return _failed(now, duration, "timeout", f"timed out after {timeout:g} s")


BLOCKED = "blocked the event loop"


def blocked(timeout: float, held: float, now: float, duration: float) -> Outcome:
    """An ``async def`` check whose own code held the event loop past its timeout
    (blocking code called without ``await``): it fails, saying so."""
    return _failed(
        now,
        duration,
        BLOCKED,
        f"blocked the event loop for {held:.2f} s (timeout {timeout:g} s): blocking code "
        "in 'async def' holds up every check and request on the loop; make it a plain "
        "'def' to run it on a thread",
    )


def not_started(threads: int, waited: float, now: float) -> Outcome:
    """A sync run that found no free check thread within its timeout."""
    return _failed(
        now,
        waited,
        "not started: no free check thread",
        f"not started: all {threads} check threads were running other checks for {waited:g} s",
    )


def _frozen(value: Any) -> tuple[Any, str | None]:
    """A private copy of an observed value (a check may mutate what it returned, and
    every render must see what it returned then), or why it cannot be one."""
    if isinstance(value, float) and not math.isfinite(value):
        return None, "observed_value must be a finite number"
    try:
        encoded = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError included
        return None, f"observed_value of type {_kind(value)} is not JSON-serialisable"
    if len(encoded) > MAX_OBSERVED_BYTES:
        return None, f"observed_value is larger than {MAX_OBSERVED_BYTES} bytes once encoded"
    return orjson.loads(encoded), None


def from_return(value: object, now: float, duration: float) -> Outcome:
    """Turn a check's return value into an outcome: None/True pass, False fails,
    a CheckResult is taken as given, anything else is a fail that says why."""
    if value is None or value is True:
        return Outcome("pass", now, duration)
    if isinstance(value, NoResult):
        return Pending("warn", now, duration, output=value.reason, detail=value.reason)
    if value is False:
        return _failed(now, duration, "check returned False")
    if isinstance(value, CheckResult):
        observed, problem = _frozen(value.observed_value)
        if problem is not None:
            return _failed(now, duration, problem)
        return Outcome(
            value.status,  # type: ignore[arg-type]  # normalised in __post_init__
            now,
            duration,
            observed_value=observed,
            observed_unit=value.observed_unit,
            output=value.output,
            detail=value.output,
            component_id=value.component_id,
            affected_endpoints=tuple(value.affected_endpoints),
            links=value.links,
        )
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()  # never awaited: close it so Python does not warn
        return _failed(
            now,
            duration,
            "check returned an awaitable, not awaited: await it in an 'async def' check "
            "(return await ...)",
        )
    kind = _kind(value)
    return _failed(
        now,
        duration,
        f"check returned an unsupported {kind} (return None, True, False or a CheckResult)",
        f"check returned an unsupported {kind}: {_safe_repr(value)}",
    )
