"""OpenTelemetry for a ``Health`` (the ``otel`` extra: ``opentelemetry-api`` only):

```python
from health_middleware.telemetry import instrument

instrument(health)  # the global providers, or meter_provider=/tracer_provider=
```

What it produces, all from the refresher (a request never records anything):

- ``health.check.duration`` (histogram, seconds): each run of a check, with
  ``health.check.name`` and ``health.check.status``;
- a span ``health.check <name>`` per run, from its start to its end, with the check's
  name, the run's status, on failure the failure's kind (``health.check.failure``:
  ``timeout``, the exception's type...) and, only with ``expose_errors``, its message
  (``health.check.message``); a failed run's span has status ERROR;
- ``health.status`` (observable gauge): the whole service's status, 1 for the current
  one of ``pass``/``warn``/``fail`` (attribute ``health.status``), 0 for the others;
- ``health.check.status`` (observable gauge): the same for each check.

Under several workers (the documentation's "Several workers, one server" page) an
instance check runs once per interval in one worker: that worker records its span and
histogram, and the check's gauge is observed only in the worker that ran its last
result, so a sum over the instance's processes counts each check once. Checks with
``scope="process"`` and the whole's status are each worker's own (each worker answers
its probes with them), so every worker observes them.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from health_middleware.health import Health
from health_middleware.model.check import Check
from health_middleware.model.report import reported_here
from health_middleware.model.result import Outcome

if TYPE_CHECKING:  # an optional dependency, imported when used
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.trace import TracerProvider

__all__ = ["instrument"]

STATUSES = ("pass", "warn", "fail")
_instrumented: weakref.WeakSet[Health] = weakref.WeakSet()


def _require() -> None:
    try:
        import opentelemetry.metrics
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        raise ImportError(
            "health_middleware.telemetry needs opentelemetry-api: "
            "pip install 'health_middleware[otel]'"
        ) from None


def instrument(
    health: Health,
    *,
    meter_provider: MeterProvider | None = None,
    tracer_provider: TracerProvider | None = None,
) -> None:
    """Report ``health``'s checks through OpenTelemetry: the metrics and spans this
    module's description lists, recorded by the refresher.

    Args:
        health: The ``Health`` to report.
        meter_provider: The ``MeterProvider`` for the metrics; ``None``: the global
            one.
        tracer_provider: The ``TracerProvider`` for the spans; ``None``: the global
            one.

    Raises:
        ValueError: ``health`` is already instrumented (once per ``Health``).
        TypeError: ``health`` is not a ``Health``.
        ImportError: ``opentelemetry-api`` is not installed.
    """
    if not isinstance(health, Health):
        raise TypeError(f"health must be a Health object, got {type(health).__name__}")
    _require()
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import Observation
    from opentelemetry.trace import SpanKind, StatusCode

    if health in _instrumented:
        raise ValueError("this Health is already instrumented")
    _instrumented.add(health)
    meter = (meter_provider or metrics.get_meter_provider()).get_meter("health_middleware")
    tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("health_middleware")
    expose = health.registry.service.expose_errors
    durations = meter.create_histogram(
        "health.check.duration", unit="s", description="Duration of each run of a check"
    )

    def on_run(check: Check, outcome: Outcome) -> None:
        status = outcome.status
        end = int(outcome.time * 1e9)
        attributes: dict[str, str] = {
            "health.check.name": check.name,
            "health.check.status": status,
        }
        durations.record(outcome.duration, attributes)
        if status == "fail" and outcome.output:
            attributes["health.check.failure"] = outcome.output
        message = outcome.detail if expose and status != "pass" else None
        if message:
            attributes["health.check.message"] = message
        span = tracer.start_span(
            f"health.check {check.name}",
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=end - int(outcome.duration * 1e9),
        )
        if status == "fail":
            span.set_status(StatusCode.ERROR, message)
        span.end(end_time=end)

    def whole(options: CallbackOptions) -> Iterable[Observation]:
        status = health.report().status
        return [Observation(int(s == status), {"health.status": s}) for s in STATUSES]

    def each(options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(
                int(s == counted.status), {"health.check.name": counted.name, "health.status": s}
            )
            for counted in reported_here(health.report())
            for s in STATUSES
        ]

    meter.create_observable_gauge(
        "health.status",
        [whole],
        unit="1",
        description="Whole service health: 1 for the current status",
    )
    meter.create_observable_gauge(
        "health.check.status",
        [each],
        unit="1",
        description="Check health: 1 for the current status",
    )
    health.engine.callbacks.on_run(on_run)
