"""Spring Boot Actuator's health shape: ``{"status": "UP", "components": {...}}``.

Mapping: pass and warn are ``UP`` (a warning adds ``"warning": true`` and its output
to the component's details), fail is ``DOWN``, draining is ``OUT_OF_SERVICE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from health_middleware.formats.base import Rendered
from health_middleware.formats.microprofile import data
from health_middleware.model.report import Report, Service

CONTENT_TYPE = "application/vnd.spring-boot.actuator.v3+json"


@dataclass(frozen=True, slots=True)
class Spring:
    """Spring Boot Actuator's health JSON: ``{"status": "UP", "components": {...}}``.

    Pass and warn are ``UP`` (a warning adds ``"warning": true`` and the status to
    the component's details), fail is ``DOWN``, draining is ``OUT_OF_SERVICE``.
    Spring's default aggregation (``DOWN`` over ``OUT_OF_SERVICE`` over ``UP``) of the
    listed components always gives the top-level status: starting, draining or stale
    appear as a component of that name.
    """

    def render(self, report: Report, service: Service, now: float) -> Rendered:
        """Spring Boot Actuator's JSON, with the endpoint's HTTP status for the report.
        The arguments are ``Format.render``'s."""
        # Spring's default aggregation (DOWN over OUT_OF_SERVICE over UP) of the
        # listed components gives the whole: a non-critical failure that only
        # degrades the full report is UP with a warning, and what no component
        # explains (starting, draining, stale) is a component of its own.
        components: dict[str, Any] = {}
        for counted in report.checks:
            details = data(counted, service)
            down = report.fails(counted)
            if counted.status != "pass" and not down:
                details["warning"] = True
                details["status"] = counted.status
            components[counted.name] = {"status": "DOWN" if down else "UP", "details": details}
        listed = {c["status"] for c in components.values()}
        if report.phase == "draining":
            reason: str | None = "OUT_OF_SERVICE"
        elif report.status == "fail" and "DOWN" not in listed:
            reason = "DOWN"
        else:
            reason = None
        if reason is not None:
            components[report.reason] = {
                "status": reason,
                "details": {"output": report.output} if report.output else {},
            }
            listed.add(reason)
        whole = next((s for s in _ORDER if s in listed), "UP")
        doc: dict[str, Any] = {"status": whole}
        if report.details:
            doc["components"] = components
        return Rendered(report.code, CONTENT_TYPE, orjson.dumps(doc))


_ORDER = ("DOWN", "OUT_OF_SERVICE", "UP")
