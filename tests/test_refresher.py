"""The refresher: intervals, timeouts, single-flight, bounded threads, staleness."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from health_middleware import CheckResult, Health, HealthMiddleware
from tests.support import call, call_without_waiting, poll
from tests.test_asgi import plain_app


def report(response: Any) -> dict[str, Any]:
    return {name: entries[0] for name, entries in response.json()["checks"].items()}


async def test_a_hung_check_fails_by_timeout_while_probes_keep_answering() -> None:
    release = threading.Event()
    runs = {"sync": 0, "async": 0}
    health = Health(interval=0.05, timeout=0.1)

    @health.check("hung-sync", critical=False)
    def hung_sync() -> None:
        runs["sync"] += 1
        release.wait(60)

    @health.check("hung-async", critical=False)
    async def hung_async() -> None:
        runs["async"] += 1
        await asyncio.Event().wait()

    health.add_check("fine", lambda: True)
    app = HealthMiddleware(plain_app, health)
    try:
        first = await poll(app, "/health", lambda r: "hung-sync" in r.json()["checks"])
        threads = threading.active_count()
        checks = report(first)
        assert checks["hung-sync"]["status"] == "fail"
        assert checks["hung-sync"]["output"] == "timeout"
        assert first.json()["status"] == "warn"  # non-critical failures degrade, not fail
        for _ in range(40):  # ~40 intervals: every probe answers at once, in one step
            for path in ("/health", "/health/ready", "/health/live"):
                call_without_waiting(app, path)
            await asyncio.sleep(0.005)
        assert threading.active_count() == threads  # the hung thread is not joined by others
        assert runs["sync"] == 1  # single-flight: never started again while it hangs
        assert runs["async"] >= 2  # cancelled at its timeout, so it can run again
        checks = report(await call(app, "/health"))
        assert checks["fine"]["status"] == "pass"
        assert checks["hung-async"]["output"] == "timeout"
    finally:
        release.set()
        await health.stop_async()


async def test_a_released_hung_check_runs_again() -> None:
    release = threading.Event()
    health = Health(interval=0.05, timeout=0.1)
    health.add_check("slow", lambda: release.wait(60) and None)
    app = HealthMiddleware(plain_app, health)
    await poll(app, "/health", lambda r: r.status == 503 and bool(r.json()["checks"]))
    release.set()
    await poll(app, "/health", lambda r: r.status == 200)
    await health.stop_async()


async def test_probes_cause_no_check_runs() -> None:
    runs = 0
    health = Health(interval=3600, timeout=1)

    @health.check("counted")
    def counted() -> None:
        nonlocal runs
        runs += 1

    app = HealthMiddleware(plain_app, health)
    await poll(app, "/health/started", lambda r: r.status == 200)
    for _ in range(1000):
        for path in ("/health", "/health/ready"):
            assert call_without_waiting(app, path).status == 200
    await asyncio.sleep(0.05)
    assert runs == 1
    await health.stop_async()


async def test_checks_run_on_their_own_intervals() -> None:
    runs = {"fast": 0, "slow": 0}
    health = Health(interval=0.05)
    health.add_check("fast", lambda: runs.__setitem__("fast", runs["fast"] + 1))
    health.add_check("slow", lambda: runs.__setitem__("slow", runs["slow"] + 1), interval=60)
    app = HealthMiddleware(plain_app, health)
    await call(app, "/health")
    await asyncio.sleep(0.6)
    await health.stop_async()
    assert runs["slow"] == 1
    assert 4 <= runs["fast"] <= 14


@pytest.mark.parametrize(
    ("returned", "status", "output"),
    [
        (None, "pass", None),
        (True, "pass", None),
        (False, "fail", "check returned False"),
        (CheckResult("warn", output="slow"), "warn", "slow"),
        (CheckResult("DOWN"), "fail", None),
        (CheckResult("ok", observed_value=[1, 2], observed_unit="x"), "pass", None),
        ("fine", "fail", "check returned an unsupported str"),
        ({"status": "pass"}, "fail", "check returned an unsupported dict"),
        (CheckResult(observed_value=object()), "fail", "not JSON-serialisable"),
        (CheckResult(observed_value=float("nan")), "fail", "finite number"),
        (CheckResult(observed_value="x" * 10000), "fail", "larger than"),
    ],
)
async def test_return_values(returned: Any, status: str, output: str | None) -> None:
    health = Health(interval=60)
    health.add_check("c", lambda: returned)
    app = HealthMiddleware(plain_app, health)
    entry = report(await poll(app, "/health", lambda r: bool(r.json()["checks"])))["c"]
    await health.stop_async()
    assert entry["status"] == status
    if output is None:
        assert "output" not in entry or status != "pass"
    else:
        assert output in entry["output"]
    if isinstance(returned, CheckResult) and status == "pass":
        assert entry["observedValue"] == returned.observed_value


async def test_exceptions_and_base_exceptions_fail_the_check_not_the_process() -> None:
    health = Health(interval=0.05)
    raisers: dict[str, BaseException] = {
        "value": ValueError("x"),
        "exit": SystemExit(3),
        "interrupt": KeyboardInterrupt(),
        "cancelled": asyncio.CancelledError(),
    }
    for name, exc in raisers.items():

        def sync(exc: BaseException = exc) -> None:
            raise exc

        async def asynchronous(exc: BaseException = exc) -> None:
            raise exc

        health.add_check(f"sync-{name}", sync, critical=False)
        health.add_check(f"async-{name}", asynchronous, critical=False)
    app = HealthMiddleware(plain_app, health)
    response = await poll(app, "/health/started", lambda r: r.status == 200)
    assert response.status == 200
    checks = report(await call(app, "/health"))
    await asyncio.sleep(0.2)  # the refresher survives and keeps running them
    assert report(await call(app, "/health")) != checks  # newer times: it ran again
    await health.stop_async()
    assert {c["status"] for c in checks.values()} == {"fail"}
    assert checks["sync-exit"]["output"] == "SystemExit"
    assert checks["async-interrupt"]["output"] == "KeyboardInterrupt"
    assert checks["async-cancelled"]["output"] == "CancelledError"


async def test_a_sync_check_returning_a_coroutine_is_refused_clearly() -> None:
    async def ping() -> None: ...

    health = Health(interval=60)
    health.add_check("wrong", lambda: ping())  # noqa: PLW0108  # the mistake under test
    app = HealthMiddleware(plain_app, health)
    entry = report(await poll(app, "/health", lambda r: bool(r.json()["checks"])))["wrong"]
    await health.stop_async()
    assert entry["status"] == "fail"
    assert "async def" in entry["output"]


async def test_async_checks_run_on_the_apps_loop() -> None:
    loops: list[asyncio.AbstractEventLoop] = []
    health = Health(interval=60)

    @health.check("loop")
    async def loop_check() -> None:
        loops.append(asyncio.get_running_loop())

    app = HealthMiddleware(plain_app, health)
    await poll(app, "/health", lambda r: r.status == 200)
    await health.stop_async()
    assert loops == [asyncio.get_running_loop()]


async def test_a_check_blocking_the_loop_is_reported_and_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health = Health(interval=60, timeout=0.05)

    @health.check("blocker", critical=False)
    async def blocker() -> None:
        time.sleep(0.2)  # the mistake: blocking code in async def

    app = HealthMiddleware(plain_app, health)
    entry = report(await poll(app, "/health", lambda r: bool(r.json()["checks"])))["blocker"]
    await health.stop_async()
    assert entry["status"] == "fail"
    assert "'blocker' blocked the event loop" in caplog.text


def test_a_stopped_refresher_cannot_keep_a_200_alive() -> None:
    from werkzeug.test import Client

    from health_middleware import WSGIHealthMiddleware
    from tests.test_wsgi import wsgi_app

    health = Health(interval=0.05, stale_after=2)
    health.add_check("ok", lambda: True)
    client = Client(WSGIHealthMiddleware(wsgi_app, health))
    deadline = time.monotonic() + 10
    while client.get("/health/live").status_code != 200 or client.get("/health").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    health.stop()
    time.sleep(2.1)
    for path in ("/health", "/health/live", "/health/ready", "/health/started"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.json is not None
        assert response.json["output"].startswith("stale"), path


async def _serve_once(app: HealthMiddleware) -> None:
    await poll(app, "/health", lambda r: r.status == 200)


def test_a_refresher_that_died_with_its_loop_is_revived() -> None:
    health = Health(interval=0.05, stale_after=2)
    health.add_check("ok", lambda: True)
    app = HealthMiddleware(plain_app, health)
    asyncio.run(_serve_once(app))  # the loop ends: its refresher is cancelled with it
    time.sleep(2.1)

    async def later() -> list[int]:
        stale = await call(app, "/health")
        fresh = await poll(app, "/health", lambda r: r.status == 200)
        await health.stop_async()
        return [stale.status, fresh.status]

    assert asyncio.run(later()) == [503, 200]


async def test_flap_damping_thresholds() -> None:
    outcomes = iter([True, False, True, False, False, True, True, True] + [True] * 100)
    seen: list[str] = []
    health = Health(interval=0.02)
    health.add_check("flappy", lambda: next(outcomes), failure_threshold=2, success_threshold=2)
    app = HealthMiddleware(plain_app, health)
    for _ in range(300):
        status = report(await call(app, "/health")).get("flappy", {}).get("status")
        if status and (not seen or seen[-1] != status):
            seen.append(status)
        await asyncio.sleep(0.005)
        if len(seen) >= 3:
            break
    await health.stop_async()
    # One failure in between passes is damped; two in a row fail; two passes recover.
    assert seen == ["pass", "fail", "pass"]
