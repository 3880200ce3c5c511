"""``application/health+json``: draft-inadarei-api-health-check-06 (seeds 001 and 004)."""

from __future__ import annotations

from typing import Any

import orjson

from health_middleware.check import Check
from health_middleware.endpoint import Endpoint
from health_middleware.report import Report, Service
from health_middleware.result import Outcome
from health_middleware.timefmt import iso_utc

CONTENT_TYPE = "application/health+json"


def _case(status: str, service: Service) -> str:
    return status.upper() if service.status_case == "upper" else status


def _check_entry(check: Check, outcome: Outcome, service: Service) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": _case(outcome.status, service)}
    if outcome.component_id is not None:
        entry["componentId"] = outcome.component_id
    entry["componentType"] = check.component_type
    if outcome.observed_value is not None:
        entry["observedValue"] = outcome.observed_value
    if outcome.observed_unit is not None:
        entry["observedUnit"] = outcome.observed_unit
    if outcome.status != "pass" and outcome.affected_endpoints:
        entry["affectedEndpoints"] = list(outcome.affected_endpoints)
    entry["time"] = iso_utc(outcome.time)
    output = outcome.detail if service.expose_errors else outcome.output
    if outcome.status != "pass" and output:
        entry["output"] = output
    if outcome.links:
        entry["links"] = dict(outcome.links)
    return entry


def render(report: Report, endpoint: Endpoint, service: Service, now: float) -> tuple[str, bytes]:
    doc: dict[str, Any] = {"status": _case(report.status, service)}
    if endpoint.details:
        for key, value in (
            ("version", service.version),
            ("releaseId", service.release_id),
            ("serviceId", service.service_id),
            ("description", service.description),
        ):
            if value is not None:
                doc[key] = value
    if report.output is not None:
        doc["output"] = report.output
    if endpoint.details:
        doc["checks"] = {c.name: [_check_entry(c, o, service)] for c, o in report.checks}
    return CONTENT_TYPE, orjson.dumps(doc)
