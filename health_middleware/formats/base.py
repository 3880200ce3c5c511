"""What every format shares: the report it renders, the response it gives back, and
the protocol it implements (all defined with the report, in ``model.report``)."""

from __future__ import annotations

from health_middleware.model.report import Format, Rendered, Report, Service

__all__ = ["Format", "Rendered", "Report", "Service"]
