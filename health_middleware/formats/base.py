"""What every format shares: the rendered response and the format protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from health_middleware.endpoint import Endpoint
    from health_middleware.report import Report, Service


@dataclass(frozen=True, slots=True)
class Rendered:
    status: int
    content_type: str
    body: bytes


class Format(Protocol):
    """Anything with this method can be an endpoint's format."""

    def render(
        self, report: Report, endpoint: Endpoint, service: Service, now: float
    ) -> Rendered: ...


def status_code(report: Report, endpoint: Endpoint) -> int:
    """The endpoint's HTTP status for the report's status."""
    return endpoint.status_codes[report.status]
