"""A report: what one endpoint says right now (computed by ``endpoint.evaluate``),
the service-level fields every format may show, and the protocol a format implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal, Protocol

from health_middleware.model.check import Check
from health_middleware.model.result import Outcome
from health_middleware.model.status import Status

Phase = Literal["serving", "starting", "draining", "stale"]

STALE = "stale: the health refresher has not published in time"
DRAINING = "draining"


@dataclass(frozen=True, slots=True)
class Service:
    """The service-level fields every format may show: the ``Health``'s own.

    Attributes:
        service_id: The IETF ``serviceId``, or None.
        version: The IETF ``version`` (the public version), or None.
        release_id: The IETF ``releaseId`` (the build or commit), or None.
        description: The IETF ``description``, or None.
        notes: The IETF ``notes`` of the full report.
        links: The IETF ``links`` of the full report, beside ``self``.
        status_case: ``"lower"`` or ``"upper"``: how the IETF format writes statuses.
        expose_errors: Whether the checks' error messages may be published.
        started_at: When the ``Health`` was made (Unix time, in seconds).
    """

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
class Transition:
    """A change of status: of a check (its name), or of the whole (``None``)."""

    name: str | None
    old: Status | None  # None: the first result
    new: Status
    time: float  # Unix time


@dataclass(frozen=True, slots=True)
class Counted:
    """One check as an endpoint counts it."""

    check: Check
    outcome: Outcome
    last_success: float | None
    changed_at: float | None = None  # when its reported status last changed
    ran_here: bool = True  # this process ran the reported result (not another worker)

    @property
    def name(self) -> str:
        return self.check.name

    @property
    def status(self) -> Status:
        return self.outcome.status

    def output(self, service: Service) -> str | None:
        """What may be published of why it is not passing."""
        return self.outcome.detail if service.expose_errors else self.outcome.output


DEFAULT_STATUS_CODES: Mapping[Status, int] = MappingProxyType(
    {"pass": 200, "warn": 200, "fail": 503}
)


@dataclass(frozen=True, slots=True)
class Report:
    """What one endpoint says right now: everything a format renders besides the
    service's own fields (``Format.render(report, service, now)``).

    Each entry of ``checks`` has the check's ``name`` and ``status``, its
    ``outcome`` (``observed_value``, ``observed_unit``, ``duration`` in seconds,
    ``time``), its ``check`` (``critical``, ``tags``, ``component_type``...),
    ``last_success`` (Unix time, or None) and ``output(service)``: what may be
    published of why it is not passing.

    Attributes:
        status: ``"pass"``, ``"warn"`` or ``"fail"``: the endpoint's verdict.
        output: Why it is not passing, e.g. ``failing: db; warning: cache``,
            ``starting: ...`` or ``draining``; None when it passes.
        checks: The checks the endpoint counts that have reported, in the order
            they were registered.
        phase: ``"serving"``, ``"starting"`` (before the first round completes),
            ``"draining"`` or ``"stale"`` (the refresher did not publish in time).
        softened: Whether a failing non-critical check only degrades this report to
            ``warn`` (the full report) rather than failing it (a probe or a group).
        transitions: The recent changes of status of the whole and of every check,
            newest first; each has ``name`` (None for the whole), ``old``, ``new``
            and ``time`` (Unix time).
        path: The endpoint's path.
        details: Whether the endpoint shows the details (the service's fields and
            every check) rather than a probe's minimal body.
        status_codes: The endpoint's HTTP status for each status.
    """

    status: Status
    output: str | None
    checks: tuple[Counted, ...]
    phase: Phase = "serving"
    # Whether a failing non-critical check only degrades this report to warn (the
    # full report), rather than failing it (a probe or tag group).
    softened: bool = False
    # The recent changes of status of the whole and of every check, newest first.
    transitions: tuple[Transition, ...] = ()
    # The endpoint's own: its path, whether it shows the details (the service's
    # fields and every check) or a minimal probe body, and its status codes.
    path: str = "/"
    details: bool = True
    status_codes: Mapping[Status, int] = field(default_factory=lambda: DEFAULT_STATUS_CODES)

    @property
    def code(self) -> int:
        """The endpoint's HTTP status for this report's status."""
        return self.status_codes[self.status]

    @property
    def stale(self) -> bool:
        """The health machinery itself failed to publish in time."""
        return self.phase == "stale"

    def fails(self, counted: Counted) -> bool:
        """Whether a check fails the whole report: it fails, and it is critical or
        the report is not softened.

        Args:
            counted: One of ``checks``.
        """
        return counted.status == "fail" and (counted.check.critical or not self.softened)

    @property
    def reason(self) -> str:
        """What fails the report when no listed check does (starting, draining,
        stale, or checks left out of a minimal body): the phase, or ``checks``.
        Formats whose whole must be the conjunction of their listed checks add an
        entry of this name."""
        name = "checks" if self.phase == "serving" else self.phase
        if any(c.name == name for c in self.checks):
            return f"{name} (health)"  # a check's name has no space: never the same
        return name


def reported_here(report: Report) -> tuple[Counted, ...]:
    """The checks a per-process exporter (a Prometheus collector, OpenTelemetry's
    gauges) reports in this process: those whose result it ran itself. Under several
    workers an instance check's result is reported by the worker that ran it, once
    per instance, however many workers adopted it; alone, a process ran them all."""
    return tuple(counted for counted in report.checks if counted.ran_here)


def unpublished(report: Report) -> Report:
    """What ``report``'s endpoint says once its snapshot has expired (phase ``stale``)."""
    return replace(
        report,
        status="fail",
        output=STALE,
        checks=(),
        phase="stale",
        softened=False,
        transitions=(),
    )


@dataclass(frozen=True, slots=True)
class Rendered:
    """A format's answer: a finished response, rendered ahead of time.

    Attributes:
        status: The HTTP status, usually the report's ``code``.
        content_type: The ``Content-Type`` header's value.
        body: The response's body.
    """

    status: int
    content_type: str
    body: bytes


class Format(Protocol):
    """Anything with this method can be an endpoint's format: a built-in one, or
    your own (the Formats page shows one)."""

    def render(self, report: Report, service: Service, now: float) -> Rendered:
        """Render a report into a response, ahead of time: it is called as each
        snapshot is built (on the refresher, about once a second), never per
        request. A format that raises answers 500 on its own endpoint only.

        Args:
            report: What the endpoint says now.
            service: The ``Health``'s own fields.
            now: The time of the snapshot (Unix time, in seconds).

        Returns:
            The response.
        """
        ...
