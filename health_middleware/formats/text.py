"""``text/plain``: the bare status, ``pass``, ``warn`` or ``fail``, for the simplest tools."""

from __future__ import annotations

from dataclasses import dataclass

from health_middleware.formats.base import Rendered
from health_middleware.model.report import Report, Service


@dataclass(frozen=True, slots=True)
class Text:
    """``text/plain``: the bare status, ``pass``, ``warn`` or ``fail``, for the
    simplest tools."""

    def render(self, report: Report, service: Service, now: float) -> Rendered:
        """The bare status as text, with the endpoint's HTTP status for the report. The
        arguments are ``Format.render``'s."""
        body = report.status.encode()
        return Rendered(report.code, "text/plain; charset=utf-8", body)
