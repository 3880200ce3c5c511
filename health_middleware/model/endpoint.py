"""An endpoint: a path, the checks it counts (its group), its format and status codes;
and what it reports (``evaluate``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from health_middleware.config.validation import safe_text
from health_middleware.model.check import Check, CheckState
from health_middleware.model.report import (
    DEFAULT_STATUS_CODES,
    DRAINING,
    Counted,
    Format,
    Phase,
    Report,
)
from health_middleware.model.status import Status, aggregate

SHOWN = 5  # checks not completed yet, named in a full report

# Built-in groups; any other group name selects the checks carrying that tag.
ALL, LIVE, READY, STARTED = "all", "live", "ready", "started"


def normalise_path(path: object, what: str = "endpoint path") -> str:
    """Validate a path and drop a trailing slash (the request side accepts both)."""
    if not isinstance(path, str):
        raise TypeError(f"{what} must be a string, got {type(path).__name__}")
    if not path.startswith("/"):
        raise ValueError(f"{what} {path!r} must start with '/'")
    if any(c in path for c in "?#") or any(c.isspace() or ord(c) < 32 for c in path):
        raise ValueError(f"{what} {path!r} must be a plain path: no query, fragment or spaces")
    if path != safe_text(path):
        raise ValueError(f"{what} {path!r} must be valid Unicode (no lone surrogates)")
    if "//" in path:
        raise ValueError(f"{what} {path!r} must not contain empty segments")
    return path.rstrip("/") or "/"


# Statuses whose responses carry no body: a health answer always has one.
_BODILESS = frozenset((204, 205, 304))


def status_code_map(codes: Mapping[str, int] | None, ietf: bool = False) -> Mapping[Status, int]:
    """Validate an endpoint's HTTP status per health status. For the IETF format the
    draft requires pass and warn in 2xx-3xx and fail in 4xx-5xx."""
    if codes is None:
        return DEFAULT_STATUS_CODES
    if not isinstance(codes, Mapping):
        raise TypeError("status_codes must map 'pass', 'warn' and 'fail' to HTTP status codes")
    missing = {"pass", "warn", "fail"} - set(codes)
    if missing:
        raise ValueError(f"status_codes must cover pass, warn and fail; missing {sorted(missing)}")
    extra = set(codes) - {"pass", "warn", "fail"}
    if extra:
        raise ValueError(f"status_codes has unknown statuses {sorted(extra)}")
    result: dict[Status, int] = {}
    for status in ("pass", "warn", "fail"):
        code = codes[status]
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError(f"status_codes[{status!r}] must be an HTTP status code (an int)")
        if not 200 <= code <= 599 or code in _BODILESS:
            raise ValueError(
                f"status_codes[{status!r}] must be an HTTP status from 200 to 599 that "
                f"carries a body (not 204, 205 or 304), got {code}"
            )
        if ietf and (code >= 400) != (status == "fail"):
            raise ValueError(
                f"status_codes[{status!r}] = {code}: the IETF health format requires pass "
                "and warn in 2xx-3xx and fail in 4xx-5xx"
            )
        result[status] = code
    return MappingProxyType(result)


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str
    group: str
    format: Format
    details: bool
    status_codes: Mapping[Status, int]
    drain: bool

    def counts(self, check: Check) -> bool:
        """Whether this endpoint's status depends on ``check``."""
        group = self.group
        if group in (ALL, STARTED):
            return True
        if group == LIVE:
            return LIVE in check.tags
        if group == READY:
            return check.critical or READY in check.tags
        return group in check.tags


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
        Counted(s.check, s.reported, s.last_success, s.changed_at, s.ran_here)
        for s in counted
        if s.reported is not None
    )

    def report(
        status: Status, output: str | None, phase: Phase = "serving", softened: bool = False
    ) -> Report:
        return Report(
            status,
            output,
            done,
            phase,
            softened,
            path=endpoint.path,
            details=endpoint.details,
            status_codes=endpoint.status_codes,
        )

    if draining and endpoint.drain:
        return report("fail", DRAINING, "draining")
    if not counted and endpoint.group not in (ALL, LIVE, READY, STARTED):
        # A group no check carries (a typo, or a check never registered): it must not
        # pass with nothing counted.
        return report("fail", f"no check carries the tag {endpoint.group!r}")
    pending = len(counted) - len(done)
    if pending and endpoint.group != LIVE:
        output = f"starting: {pending} of {len(counted)} checks have not completed yet"
        if endpoint.details:  # the full report names them (a probe's body stays stable)
            waiting = [s.check.name for s in counted if s.reported is None]
            output += ": " + ", ".join(waiting[:SHOWN]) + (", ..." if pending > SHOWN else "")
        return report("fail", output, "starting")
    if endpoint.group == STARTED:
        return report("pass", None)
    # In the full report a non-critical failure degrades to warn; in a probe or tag
    # group every counted check decides (a check tagged 'ready' that fails must fail
    # readiness, or the tag would mean nothing).
    softened = endpoint.group == ALL
    status = aggregate((c.check.critical or not softened, c.status) for c in done)
    return report(status, None if status == "pass" else _summary(done), softened=softened)
