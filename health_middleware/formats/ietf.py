"""``application/health+json``: draft-inadarei-api-health-check-06."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from health_middleware.formats.base import Rendered
from health_middleware.formats.timefmt import iso_utc
from health_middleware.model.report import Counted, Report, Service

CONTENT_TYPE = "application/health+json"


def _case(status: str, service: Service) -> str:
    return status.upper() if service.status_case == "upper" else status


def _check_entry(counted: Counted, service: Service) -> dict[str, Any]:
    outcome, check = counted.outcome, counted.check
    entry: dict[str, Any] = {"status": _case(outcome.status, service)}
    component_id = outcome.component_id or check.component_id
    if component_id is not None:
        entry["componentId"] = component_id
    entry["componentType"] = check.component_type
    if outcome.observed_value is not None:
        entry["observedValue"] = outcome.observed_value
    if outcome.observed_unit is not None:
        entry["observedUnit"] = outcome.observed_unit
    if outcome.status != "pass":
        affected = outcome.affected_endpoints or check.affected_endpoints
        if affected:
            entry["affectedEndpoints"] = list(affected)
    entry["time"] = iso_utc(outcome.time)
    output = counted.output(service)
    if outcome.status != "pass" and output:
        entry["output"] = output
    if outcome.links:
        entry["links"] = dict(outcome.links)
    return entry


@dataclass(frozen=True, slots=True)
class Ietf:
    """``application/health+json``: the health check response of the IETF draft
    (draft-inadarei-api-health-check-06), the default format.

    ``status``, ``output`` off pass, the service's fields (``version``,
    ``releaseId``, ``serviceId``, ``description``, ``notes``), ``checks`` keyed
    ``component:measurement`` and ``links``. A probe's minimal body is
    ``{"status": "pass"}`` (with ``output`` off pass). The statuses' case is the
    ``Health``'s ``status_case``.
    """

    def render(self, report: Report, service: Service, now: float) -> Rendered:
        """The draft's JSON, with the endpoint's HTTP status for the report. The
        arguments are ``Format.render``'s."""
        doc: dict[str, Any] = {"status": _case(report.status, service)}
        if report.details:
            for key, value in (
                ("version", service.version),
                ("releaseId", service.release_id),
                ("serviceId", service.service_id),
                ("description", service.description),
            ):
                if value is not None:
                    doc[key] = value
            if service.notes:
                doc["notes"] = list(service.notes)
        if report.output is not None:
            doc["output"] = report.output
        if report.details:
            doc["checks"] = {c.name: [_check_entry(c, service)] for c in report.checks}
            doc["links"] = {"self": report.path, **service.links}
        return Rendered(report.code, CONTENT_TYPE, orjson.dumps(doc))
