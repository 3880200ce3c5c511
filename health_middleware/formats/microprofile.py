"""MicroProfile Health: version 4 (``status``/``status``) and, as an option, the 1.0
shape (``outcome``/``state``). 200 up, 503 down, and 500 when the health machinery
itself failed (the refresher did not publish in time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from health_middleware.formats.base import Rendered
from health_middleware.formats.timefmt import iso_utc
from health_middleware.model.report import Counted, Report, Service

CONTENT_TYPE = "application/json"


def _data_value(value: Any) -> str | bool | int | float:
    """MicroProfile data values are strings, booleans or numbers."""
    if isinstance(value, str | bool | int | float):
        return value
    return orjson.dumps(value).decode()


def data(counted: Counted, service: Service) -> dict[str, Any]:
    """A check's details as flat key/value pairs (shared with the Spring format)."""
    outcome = counted.outcome
    result: dict[str, Any] = {"componentType": counted.check.component_type}
    if outcome.observed_value is not None:
        result["observedValue"] = _data_value(outcome.observed_value)
    if outcome.observed_unit is not None:
        result["observedUnit"] = outcome.observed_unit
    result["time"] = iso_utc(outcome.time)
    output = counted.output(service)
    if outcome.status != "pass" and output:
        result["output"] = output
    return result


@dataclass(frozen=True, slots=True)
class MicroProfile:
    """MicroProfile Health's JSON: ``{"status": "UP", "checks": [...]}``.

    The top-level status is the logical AND of the listed checks, as the
    specification requires: a non-critical check that fails (which only degrades the
    full report to warn) is listed ``UP`` with ``"status": "fail"`` and
    ``"critical": false`` in its ``data``, and a failure no listed check explains
    (starting, draining, stale, a minimal body) is listed as a check of its own.
    HTTP 200 when up, 503 when down, 500 when the refresher did not publish in time.

    Attributes:
        version: ``"4.0"`` for MicroProfile Health 4 (``status`` at the top and in
            each check); ``"1.0"`` for the 1.0 shape (``outcome`` at the top,
            ``state`` in each check).
    """

    version: str = "4.0"

    def __post_init__(self) -> None:
        if self.version not in ("4.0", "1.0"):
            raise ValueError("MicroProfile version must be '4.0' or '1.0'")

    def render(self, report: Report, service: Service, now: float) -> Rendered:
        """MicroProfile Health's JSON: HTTP 200 up, 503 down, 500 when stale. The
        arguments are ``Format.render``'s."""
        # The whole is the conjunction of the listed checks (the specification's
        # rule): a non-critical check that fails the full report only to "warn" is
        # listed UP with its failure in its data, and a failure no listed check
        # explains (starting, draining, stale, a minimal body) gets an entry of its own.
        whole, each = ("status", "status") if self.version == "4.0" else ("outcome", "state")
        checks: list[dict[str, Any]] = []
        if report.details:
            for counted in report.checks:
                entry: dict[str, Any] = {
                    "name": counted.name,
                    each: "DOWN" if report.fails(counted) else "UP",
                    "data": {"status": counted.status, **data(counted, service)},
                }
                if not counted.check.critical:
                    entry["data"]["critical"] = False
                checks.append(entry)
        if report.status == "fail" and all(c[each] == "UP" for c in checks):
            reason: dict[str, Any] = {"name": report.reason, each: "DOWN"}
            if report.output is not None:
                reason["data"] = {"output": report.output}
            checks.append(reason)
        doc = {whole: "DOWN" if report.status == "fail" else "UP", "checks": checks}
        status = 500 if report.stale else report.code
        return Rendered(status, CONTENT_TYPE, orjson.dumps(doc))
