"""``text/plain``: the bare status, ``pass``, ``warn`` or ``fail``, for the simplest tools."""

from __future__ import annotations

from dataclasses import dataclass

from health_middleware.formats.base import Rendered, status_code
from health_middleware.model.endpoint import Endpoint
from health_middleware.model.report import Report, Service


@dataclass(frozen=True, slots=True)
class Text:
    def render(self, report: Report, endpoint: Endpoint, service: Service, now: float) -> Rendered:
        body = report.status.encode()
        return Rendered(status_code(report, endpoint), "text/plain; charset=utf-8", body)
