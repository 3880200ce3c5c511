"""OpenTelemetry through the real SDK (in-memory reader and exporter): gauges,
durations and spans match the checks' outcomes; slow checks are named in the log;
under several workers an instance check is reported by the worker that ran it."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from health_middleware import CheckResult, Health, HealthMiddleware
from health_middleware.prometheus import HealthCollector
from health_middleware.telemetry import instrument
from tests.support import poll
from tests.test_asgi import plain_app


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    found: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def _current(points: list[Any]) -> dict[str, str]:
    """check (or "") -> the status whose gauge reads 1."""
    return {
        str(p.attributes.get("health.check.name", "")): str(p.attributes["health.status"])
        for p in points
        if p.value == 1
    }


def _providers() -> tuple[
    InMemoryMetricReader, MeterProvider, InMemorySpanExporter, TracerProvider
]:
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return reader, MeterProvider(metric_readers=[reader]), exporter, tracer_provider


def _check_spans(exporter: InMemorySpanExporter, expose_errors: bool) -> None:
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {f"health.check {n}" for n in ("ok", "full", "broken", "hung")}
    ok, full = spans["health.check ok"], spans["health.check full"]
    broken_span, hung = spans["health.check broken"], spans["health.check hung"]
    assert ok.attributes is not None
    assert ok.attributes["health.check.status"] == "pass"
    assert ok.status.status_code is StatusCode.UNSET
    assert full.attributes is not None
    assert full.attributes["health.check.status"] == "warn"
    assert broken_span.status.status_code is StatusCode.ERROR
    assert broken_span.attributes is not None
    assert hung.attributes is not None
    assert broken_span.attributes["health.check.failure"] == "ConnectionError"
    assert hung.attributes["health.check.failure"] == "timeout"
    assert hung.end_time is not None
    assert hung.start_time is not None
    assert hung.end_time - hung.start_time >= 0.2e9
    if expose_errors:
        message = "ConnectionError: refused by 10.0.0.7"
        assert broken_span.attributes["health.check.message"] == message
        assert broken_span.status.description == message
    else:
        assert "health.check.message" not in broken_span.attributes
        assert not broken_span.status.description
        assert all("10.0.0.7" not in str(s.to_json()) for s in exporter.get_finished_spans())


@pytest.mark.parametrize("expose_errors", [False, True])
async def test_pass_warn_fail_and_timeout(expose_errors: bool) -> None:
    reader, meters, exporter, tracers = _providers()
    release = threading.Event()
    health = Health(interval=0.05, timeout=0.2, expose_errors=expose_errors)
    health.add_check("ok", lambda: True)
    health.add_check("full", lambda: CheckResult("warn", output="almost full"), critical=False)

    def broken() -> None:
        raise ConnectionError("refused by 10.0.0.7")

    health.add_check("broken", broken, critical=False)
    health.add_check("hung", lambda: release.wait(5), critical=False)
    instrument(health, meter_provider=meters, tracer_provider=tracers)
    with pytest.raises(ValueError, match="already"):
        instrument(health, meter_provider=meters, tracer_provider=tracers)
    app = HealthMiddleware(plain_app, health)
    try:
        await poll(app, "/health", lambda r: "hung" in r.json().get("checks", {}))
        points = _points(reader)
        assert _current(points["health.check.status"]) == {
            "ok": "pass",
            "full": "warn",
            "broken": "fail",
            "hung": "fail",
        }
        assert _current(points["health.status"]) == {"": "warn"}
        durations = {
            str(p.attributes["health.check.name"]): p for p in points["health.check.duration"]
        }
        assert durations["hung"].attributes["health.check.status"] == "fail"
        assert durations["hung"].max >= 0.2
        assert durations["ok"].max < 0.2
        _check_spans(exporter, expose_errors)
    finally:
        release.set()
        await health.stop_async()


async def test_requests_record_nothing() -> None:
    _reader, meters, exporter, tracers = _providers()
    health = Health(interval=30)
    health.add_check("ok", lambda: True)
    instrument(health, meter_provider=meters, tracer_provider=tracers)
    app = HealthMiddleware(plain_app, health)
    try:
        await poll(app, "/health", lambda r: "ok" in r.json().get("checks", {}))
        await asyncio.sleep(0.05)
        before = len(exporter.get_finished_spans())
        for _ in range(50):
            await poll(app, "/health/ready", lambda r: r.status == 200)
        assert len(exporter.get_finished_spans()) == before == 1
    finally:
        await health.stop_async()


def test_instance_checks_are_reported_by_the_worker_that_ran_them() -> None:
    """A worker that adopted another's result leaves that check to the worker that
    ran it (OpenTelemetry gauges and HealthCollector alike); its process checks and
    the whole are its own."""
    reader, meters, _, tracers = _providers()
    ran, adopted = Health(), Health()
    for health in (ran, adopted):
        health.add_check("db", lambda: True)
        health.add_check("mem", lambda: True, scope="process")
    instrument(adopted, meter_provider=meters, tracer_provider=tracers)
    from health_middleware.model.result import from_return

    states = {s.check.name: s for s in ran.engine.results.states()}
    ran.engine.results.record(states["db"], from_return(True, 1.0, 0.01))
    theirs = {s.check.name: s for s in adopted.engine.results.states()}
    theirs["db"].adopt(states["db"].to_record())
    adopted.engine.results.record(theirs["mem"], from_return(True, 1.0, 0.01))
    assert _current(_points(reader)["health.check.status"]) == {"mem": "pass"}
    collected = {
        sample.labels["check"]
        for family in HealthCollector(adopted).collect()
        for sample in family.samples
        if "check" in sample.labels
    }
    assert collected == {"mem"}
    assert {
        sample.labels["check"]
        for family in HealthCollector(ran).collect()
        for sample in family.samples
        if "check" in sample.labels
    } == {"db"}


def test_slow_checks_are_named_once_per_change(caplog: pytest.LogCaptureFixture) -> None:
    from health_middleware.model.result import from_return

    health = Health(timeout=1.0)
    health.add_check("db", lambda: True)
    state = next(iter(health.engine.results.states()))
    caplog.set_level(logging.INFO, logger="health_middleware")
    for duration in (0.1, 0.6, 0.7, 0.8, 0.2, 0.1, 0.9):
        health.engine.results.record(state, from_return(True, 1.0, duration))
    slow = [r.getMessage() for r in caplog.records if "slow" in r.getMessage()]
    assert slow == [
        "check 'db' is slow: its run took 0.600 s, more than half its timeout (1 s)",
        "check 'db' is no longer slow: its run took 0.200 s (timeout 1 s)",
        "check 'db' is slow: its run took 0.900 s, more than half its timeout (1 s)",
    ]


def test_a_run_time_hovering_at_the_line_is_named_once(caplog: pytest.LogCaptureFixture) -> None:
    from health_middleware.model.result import from_return

    health = Health(timeout=2.0)
    health.add_check("db", lambda: True)
    state = next(iter(health.engine.results.states()))
    caplog.set_level(logging.INFO, logger="health_middleware")
    for run in range(100):
        health.engine.results.record(state, from_return(True, 1.0, 0.99 if run % 2 else 1.01))
    slow = [r.getMessage() for r in caplog.records if "slow" in r.getMessage()]
    assert len(slow) == 1, slow


def test_a_broken_exporter_is_logged_once_not_on_every_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from health_middleware.model.result import from_return

    health = Health(timeout=1.0)
    health.add_check("db", lambda: True)

    def broken(check: Any, outcome: Any) -> None:
        raise RuntimeError("the exporter is down")

    health.engine.callbacks.on_run(broken)
    state = next(iter(health.engine.results.states()))
    caplog.set_level(logging.INFO, logger="health_middleware")
    for _ in range(50):
        health.engine.results.record(state, from_return(True, 1.0, 0.01))
    failures = [r for r in caplog.records if "on_run callback raised" in r.getMessage()]
    assert len(failures) == 1
    assert state.reported is not None  # the runs were all taken
