"""``HealthCollector(health)``: the openmetrics format's metrics in your own
``prometheus_client`` registry, for an existing ``/metrics`` endpoint:

```python
from prometheus_client import REGISTRY

REGISTRY.register(HealthCollector(health))
```

A face, not a format: it reads the live state at scrape time (a scrape runs no check).

A custom collector is not aggregated across processes: under several workers each
worker's ``/metrics`` is scraped apart. An instance check's metrics come only from
the worker that ran its last result, so the instance reports each once; checks with
``scope="process"`` and the whole come from every worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from health_middleware.formats.openmetrics import families, require
from health_middleware.health import Health
from health_middleware.model.report import reported_here

if TYPE_CHECKING:  # an optional dependency, imported when used
    from prometheus_client.metrics_core import Metric

__all__ = ["HealthCollector"]


class HealthCollector:
    """A ``prometheus_client`` collector of the full report's metrics, read at scrape
    time from what the refresher last recorded (a scrape runs no check).

    The metrics are those of the ``openmetrics`` format: ``health_status``,
    ``health_check_status``, ``health_check_duration_seconds`` and
    ``health_check_last_success_timestamp_seconds``.

    Args:
        health: The ``Health`` whose full report to collect.

    Raises:
        ImportError: ``prometheus_client`` is not installed (the ``prometheus``
            extra).
    """

    def __init__(self, health: Health) -> None:
        require()
        self._health = health

    def collect(self) -> Iterator[Metric]:
        """The metric families, as ``prometheus_client`` asks for them at each scrape.

        Yields:
            Each metric family of the full report as of now.
        """
        report = self._health.report()
        yield from families(replace(report, checks=reported_here(report)))
