"""Spring Boot Actuator's health shape: ``{"status": "UP", "components": {...}}``.

Mapping: pass and warn are ``UP`` (a warning adds ``"warning": true`` and its output
to the component's details), fail is ``DOWN``, draining is ``OUT_OF_SERVICE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from health_middleware.endpoint import Endpoint
from health_middleware.formats.base import Rendered, status_code
from health_middleware.formats.microprofile import data
from health_middleware.report import Report, Service

CONTENT_TYPE = "application/vnd.spring-boot.actuator.v3+json"


@dataclass(frozen=True, slots=True)
class Spring:
    def render(self, report: Report, endpoint: Endpoint, service: Service, now: float) -> Rendered:
        # Spring's default aggregation (DOWN over OUT_OF_SERVICE over UP) of the
        # listed components gives the whole: a non-critical failure that only
        # degrades the full report is UP with a warning, and a failure no component
        # explains (starting, draining, stale) is a component of its own.
        if report.phase == "draining":
            whole = "OUT_OF_SERVICE"
        else:
            whole = "DOWN" if report.status == "fail" else "UP"
        doc: dict[str, Any] = {"status": whole}
        if endpoint.details:
            components: dict[str, Any] = {}
            for counted in report.checks:
                details = data(counted, service)
                down = report.fails(counted)
                if counted.status != "pass" and not down:
                    details["warning"] = True
                    details["status"] = counted.status
                components[counted.name] = {"status": "DOWN" if down else "UP", "details": details}
            if whole != "UP" and all(c["status"] == "UP" for c in components.values()):
                components[report.reason] = {
                    "status": whole,
                    "details": {"output": report.output} if report.output else {},
                }
            doc["components"] = components
        return Rendered(status_code(report, endpoint), CONTENT_TYPE, orjson.dumps(doc))
