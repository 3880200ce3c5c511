"""OpenMetrics text, rendered with ``prometheus_client`` (the ``prometheus`` extra):
the whole status, and for each check its status, last run's duration and last success.
The endpoint always answers 200, so a scrape succeeds and records a failing status.
``health_middleware.prometheus.HealthCollector`` yields the same metrics live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from health_middleware.formats.base import Rendered
from health_middleware.model.report import Report, Service

if TYPE_CHECKING:  # an optional dependency, imported when used
    from prometheus_client.metrics_core import Metric

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
STATUSES = ("pass", "warn", "fail")


def require() -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise ImportError(
            "the openmetrics format needs prometheus_client: "
            "pip install 'health_middleware[prometheus]'"
        ) from None


def families(report: Report) -> list[Metric]:
    from prometheus_client.core import GaugeMetricFamily

    whole = GaugeMetricFamily(
        "health_status", "Whole service health: 1 for the current status", labels=["status"]
    )
    for status in STATUSES:
        whole.add_metric([status], 1.0 if report.status == status else 0.0)
    each = GaugeMetricFamily(
        "health_check_status", "Check health: 1 for the current status", labels=["check", "status"]
    )
    duration = GaugeMetricFamily(
        "health_check_duration_seconds", "Duration of the check's last run", labels=["check"]
    )
    success = GaugeMetricFamily(
        "health_check_last_success_timestamp_seconds",
        "When the check last passed or warned (Unix time)",
        labels=["check"],
    )
    for counted in report.checks:
        for status in STATUSES:
            each.add_metric([counted.name, status], 1.0 if counted.status == status else 0.0)
        duration.add_metric([counted.name], counted.outcome.duration)
        if counted.last_success is not None:
            success.add_metric([counted.name], counted.last_success)
    return [whole, each, duration, success]


def exposition(metrics: list[Metric]) -> bytes:
    from prometheus_client.openmetrics.exposition import generate_latest

    class _Fixed:
        def collect(self) -> list[Metric]:
            return metrics

    encoded: bytes = generate_latest(_Fixed())
    return encoded


@dataclass(frozen=True, slots=True)
class OpenMetrics:
    """OpenMetrics text for Prometheus (the ``prometheus`` extra): ``health_status``
    and, for each check, ``health_check_status``, the last run's
    ``health_check_duration_seconds`` and ``health_check_last_success_timestamp_seconds``.

    Always HTTP 200, so that a scrape of a failing service records the failure
    rather than failing. ``health_middleware.prometheus.HealthCollector`` gives the
    same metrics to an existing ``/metrics`` endpoint.
    """

    def __post_init__(self) -> None:
        require()  # refused at endpoint registration when the extra is missing

    def render(self, report: Report, service: Service, now: float) -> Rendered:
        """The OpenMetrics text, always with HTTP status 200. The arguments are
        ``Format.render``'s."""
        # Always 200: a scraper treats any other status as a failed scrape and would
        # lose the very metrics that say the service is failing.
        return Rendered(200, CONTENT_TYPE, exposition(families(report)))
