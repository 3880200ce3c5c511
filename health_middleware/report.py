"""What one endpoint says right now, computed from the checks' reported outcomes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from health_middleware.check import Check, CheckState
from health_middleware.endpoint import ALL, LIVE, STARTED, Endpoint
from health_middleware.result import Outcome
from health_middleware.status import Status, aggregate

STALE = "stale: the health refresher has not published in time"
DRAINING = "draining"


@dataclass(frozen=True, slots=True)
class Service:
    """The service-level fields every format may show."""

    service_id: str | None
    version: str | None
    release_id: str | None
    description: str | None
    status_case: str
    expose_errors: bool
    started_at: float


@dataclass(frozen=True, slots=True)
class Report:
    status: Status
    output: str | None
    checks: tuple[tuple[Check, Outcome], ...]


def _summary(checks: Iterable[tuple[Check, Outcome]]) -> str | None:
    failing = [c.name for c, o in checks if o.status == "fail"]
    warning = [c.name for c, o in checks if o.status == "warn"]
    parts = []
    if failing:
        parts.append("failing: " + ", ".join(failing))
    if warning:
        parts.append("warning: " + ", ".join(warning))
    return "; ".join(parts) or None


def evaluate(endpoint: Endpoint, states: Iterable[CheckState], draining: bool) -> Report:
    counted = [s for s in states if endpoint.counts(s.check)]
    done = tuple((s.check, s.reported) for s in counted if s.reported is not None)
    if draining and endpoint.drain:
        return Report("fail", DRAINING, done)
    pending = len(counted) - len(done)
    if pending and endpoint.group != LIVE:
        return Report(
            "fail", f"starting: {pending} of {len(counted)} checks have not completed yet", done
        )
    if endpoint.group == STARTED:
        return Report("pass", None, done)
    # In the full report a non-critical failure degrades to warn; in a probe or tag
    # group every counted check decides (a check tagged 'ready' that fails must fail
    # readiness, or the tag would mean nothing).
    softened = endpoint.group == ALL
    status = aggregate((c.critical or not softened, o.status) for c, o in done)
    return Report(status, None if status == "pass" else _summary(done), done)


def stale() -> Report:
    return Report("fail", STALE, ())
