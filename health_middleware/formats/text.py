"""``text/plain``: the bare status, ``pass``, ``warn`` or ``fail``, for the simplest tools."""

from __future__ import annotations

from dataclasses import dataclass

from health_middleware.formats.base import Rendered
from health_middleware.model.report import Report, Service


@dataclass(frozen=True, slots=True)
class Text:
    def render(self, report: Report, service: Service, now: float) -> Rendered:
        body = report.status.encode()
        return Rendered(report.code, "text/plain; charset=utf-8", body)
