"""What one endpoint says right now, computed from the checks' reported outcomes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from health_middleware.check import Check, CheckState
from health_middleware.endpoint import ALL, LIVE, STARTED, Endpoint
from health_middleware.result import Outcome
from health_middleware.status import Status, aggregate

Phase = Literal["serving", "starting", "draining", "stale"]

STALE = "stale: the health refresher has not published in time"
DRAINING = "draining"


@dataclass(frozen=True, slots=True)
class Service:
    """The service-level fields every format may show."""

    service_id: str | None
    version: str | None
    release_id: str | None
    description: str | None
    notes: tuple[str, ...]
    links: Mapping[str, str]
    status_case: str
    expose_errors: bool
    started_at: float


@dataclass(frozen=True, slots=True)
class Counted:
    """One check as an endpoint counts it."""

    check: Check
    outcome: Outcome
    last_success: float | None

    @property
    def name(self) -> str:
        return self.check.name

    @property
    def status(self) -> Status:
        return self.outcome.status

    def output(self, service: Service) -> str | None:
        """What may be published of why it is not passing."""
        return self.outcome.detail if service.expose_errors else self.outcome.output


@dataclass(frozen=True, slots=True)
class Report:
    status: Status
    output: str | None
    checks: tuple[Counted, ...]
    phase: Phase = "serving"
    # Whether a failing non-critical check only degrades this report to warn (the
    # full report), rather than failing it (a probe or tag group).
    softened: bool = False

    @property
    def stale(self) -> bool:
        """The health machinery itself failed to publish in time."""
        return self.phase == "stale"

    def fails(self, counted: Counted) -> bool:
        """Whether this check's status fails the whole report."""
        return counted.status == "fail" and (counted.check.critical or not self.softened)

    @property
    def reason(self) -> str:
        """What fails the report when no listed check does (starting, draining,
        stale, or checks left out of a minimal body): the phase, or ``checks``.
        Formats whose whole must be the conjunction of their listed checks add an
        entry of this name."""
        return "checks" if self.phase == "serving" else self.phase


def _summary(checks: Iterable[Counted]) -> str | None:
    failing = [c.name for c in checks if c.status == "fail"]
    warning = [c.name for c in checks if c.status == "warn"]
    parts = []
    if failing:
        parts.append("failing: " + ", ".join(failing))
    if warning:
        parts.append("warning: " + ", ".join(warning))
    return "; ".join(parts) or None


def evaluate(endpoint: Endpoint, states: Iterable[CheckState], draining: bool) -> Report:
    counted = [s for s in states if endpoint.counts(s.check)]
    done = tuple(
        Counted(s.check, s.reported, s.last_success) for s in counted if s.reported is not None
    )
    if draining and endpoint.drain:
        return Report("fail", DRAINING, done, "draining")
    pending = len(counted) - len(done)
    if pending and endpoint.group != LIVE:
        output = f"starting: {pending} of {len(counted)} checks have not completed yet"
        return Report("fail", output, done, "starting")
    if endpoint.group == STARTED:
        return Report("pass", None, done)
    # In the full report a non-critical failure degrades to warn; in a probe or tag
    # group every counted check decides (a check tagged 'ready' that fails must fail
    # readiness, or the tag would mean nothing).
    softened = endpoint.group == ALL
    status = aggregate((c.check.critical or not softened, c.status) for c in done)
    return Report(status, None if status == "pass" else _summary(done), done, softened=softened)


def stale() -> Report:
    return Report("fail", STALE, (), "stale")
