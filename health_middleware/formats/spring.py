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
        if report.phase == "draining":
            whole = "OUT_OF_SERVICE"
        else:
            whole = "DOWN" if report.status == "fail" else "UP"
        doc: dict[str, Any] = {"status": whole}
        if endpoint.details:
            components = {}
            for counted in report.checks:
                details = data(counted, service)
                if counted.status == "warn":
                    details["warning"] = True
                components[counted.name] = {
                    "status": "DOWN" if counted.status == "fail" else "UP",
                    "details": details,
                }
            doc["components"] = components
        return Rendered(status_code(report, endpoint), CONTENT_TYPE, orjson.dumps(doc))
