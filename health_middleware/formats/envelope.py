"""The ``{code, message, data}`` envelope: ``{"code", "message", "data": {...}}``.

Healthy (pass or warn): HTTP 200, code 0, ``data`` with ``status`` "healthy",
``timestamp``, ``service`` and ``uptime``. A failing datastore check: 503, code 50002,
"degraded", with ``details``. Any other failure: 503, code 50001, "unhealthy".
``timestamp`` has whole-second resolution, so it changes at most once a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from health_middleware.formats.base import Rendered
from health_middleware.formats.timefmt import iso_utc
from health_middleware.model.report import Counted, Report, Service

HEALTHY, UNHEALTHY, DEGRADED = 0, 50001, 50002


def _details(failing: list[Counted], service: Service) -> str:
    texts: list[str] = []
    for counted in failing:
        if counted.outcome.output == "timeout":
            text = "Database connection timeout"
        else:
            text = f"Database connection failed ({counted.output(service)})"
        if text not in texts:
            texts.append(text)
    return "; ".join(texts)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A business API's envelope: ``{"code", "message", "data"}``.

    Healthy (pass or warn): HTTP 200, code 0, ``data`` with ``status`` "healthy",
    ``timestamp``, ``service`` and ``uptime`` (seconds). A failing datastore check
    (``component_type="datastore"``): 503, code 50002, "degraded", with ``details``.
    Any other failure (starting, draining, stale included): 503, code 50001,
    "unhealthy". ``timestamp`` has whole-second resolution. The messages are yours,
    e.g. ``Envelope(ok="服务正常运行", unhealthy="服务暂时不可用",
    degraded="数据库连接失败")`` for a Chinese-language API.

    Attributes:
        ok: The ``message`` when healthy.
        unhealthy: The ``message`` when failing for any other reason than a
            datastore.
        degraded: The ``message`` when a datastore check fails.
    """

    ok: str = "Service is running normally"
    unhealthy: str = "Service temporarily unavailable"
    degraded: str = "Database connection failed"

    def __post_init__(self) -> None:
        for name in ("ok", "unhealthy", "degraded"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"Envelope({name}=...) must be a string")

    def render(self, report: Report, service: Service, now: float) -> Rendered:
        """The envelope's JSON, with the endpoint's HTTP status for the report. The
        arguments are ``Format.render``'s."""
        timestamp = iso_utc(math.floor(now))
        data: dict[str, Any]
        if report.status != "fail":
            code, message = HEALTHY, self.ok
            data = {"status": "healthy", "timestamp": timestamp}
            if service.service_id is not None:
                data["service"] = service.service_id
            data["uptime"] = max(0, int(now - service.started_at))
        else:
            failing = [
                c
                for c in report.checks
                if c.status == "fail" and c.check.component_type == "datastore"
            ]
            if failing and report.phase == "serving":
                code, message = DEGRADED, self.degraded
                data = {"status": "degraded", "timestamp": timestamp}
                data["details"] = _details(failing, service)
            else:
                code, message = UNHEALTHY, self.unhealthy
                data = {"status": "unhealthy", "timestamp": timestamp}
        doc = {"code": code, "message": message, "data": data}
        return Rendered(report.code, "application/json", orjson.dumps(doc))
