"""A check's verdict depends on that check alone: one that holds the event loop
(blocking code in ``async def``) or the GIL (a long C call) fails, named, and the
healthy checks it held up do not, on a real server, in ``run_once`` and in the
``check`` command alike."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import pytest

from health_middleware.engine.stalls import Steps, loop_lateness, thread_lateness
from tests.support import REPO, get, server, service, uvicorn


def _checks(body: Any) -> dict[str, dict[str, Any]]:
    return {name: entries[0] for name, entries in body["checks"].items()}


@pytest.mark.server
def test_the_checks_that_hold_the_loop_or_the_gil_fail_alone_on_a_real_server() -> None:
    service("PostgreSQL", 5432)
    with server(uvicorn("tests.apps.blocking:app")) as running:
        deadline = time.monotonic() + 30
        while len(running.get("/health").json()["checks"]) < 4:
            assert time.monotonic() < deadline, running.output()
            time.sleep(0.1)
        ready = []
        until = time.monotonic() + 9  # two rounds (interval 4 s), each held 1.5 s twice
        while time.monotonic() < until:
            # A probe may wait while the loop or the GIL is held (that is the culprits'
            # harm, which the probe port avoids): what it gets is what is asserted.
            ready.append(get(running.port, "/health/ready", timeout=10).status)
            time.sleep(0.1)
        report = _checks(running.get("/health").json())
    assert set(ready) == {200}, ready
    assert report["postgres"]["status"] == "pass"
    assert report["quick"]["status"] == "pass"
    assert report["loop-hog"]["output"] == "blocked the event loop"
    assert report["gil-hog"]["output"] == "timeout"
    log = running.output()
    assert "check 'loop-hog' blocked the event loop for" in log
    for healthy in ("postgres", "quick"):
        assert f"'{healthy}' is failing" not in log, log
        assert f"'{healthy}' blocked" not in log, log


def test_run_once_and_the_check_command_blame_only_the_culprits() -> None:
    service("PostgreSQL", 5432)
    result = subprocess.run(
        [sys.executable, "-m", "health_middleware", "check", "tests.apps.blocking:health"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr  # warn: non-critical fail
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:5]}
    assert rows == {"postgres": "pass", "quick": "pass", "loop-hog": "fail", "gil-hog": "fail"}
    assert "blocked the event loop" in result.stdout


async def test_a_steps_time_is_its_own_code_not_its_waits() -> None:
    steps = Steps()

    async def check() -> str:
        await asyncio.sleep(0.2)  # a wait: not its own time
        time.sleep(0.1)  # its own code, holding the loop
        return "done"

    assert await steps.run(check) == "done"
    assert 0.1 <= steps.spent < 0.18


async def test_a_cancelled_stepped_run_unwinds_its_coroutine() -> None:
    steps, unwound = Steps(), asyncio.Event()

    async def check() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            unwound.set()

    async def stepped() -> None:
        await steps.run(check)

    task = asyncio.ensure_future(stepped())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert unwound.is_set()


async def test_lateness_counts_a_hold_while_runs_are_in_flight_only() -> None:
    loop = loop_lateness(asyncio.get_running_loop())
    mark = loop.enter()
    time.sleep(0.3)  # the loop held: the overdue tick counts at once
    assert loop.since(mark) >= 0.25
    await asyncio.sleep(0.05)
    loop.leave()
    idle = loop.now()
    time.sleep(0.2)  # nothing in flight: nothing counted
    assert loop.now() == idle
    threads = thread_lateness()
    mark = threads.enter()
    await asyncio.sleep(0.1)  # the GIL free: the thread wakes on time
    assert threads.since(mark) < 0.05
    threads.leave()


async def test_a_hung_check_fails_however_busy_the_loop() -> None:
    """A non-critical check blocks the loop on every run; a critical dependency hangs:
    its credit for the loop held is capped, so it fails within about twice its timeout
    and an interval, not never."""
    from health_middleware import Health, HealthMiddleware
    from tests.support import poll
    from tests.test_asgi import plain_app

    hung = asyncio.Event()
    health = Health(interval=0.3, timeout=0.3)

    @health.check("blocker", critical=False)
    async def blocker() -> None:
        time.sleep(0.45)  # blocks the loop, every run

    @health.check("dependency")
    async def dependency() -> None:
        if hung.is_set():
            await asyncio.Event().wait()

    app = HealthMiddleware(plain_app, health)
    try:
        await poll(app, "/health/ready", lambda r: r.status == 200)
        hung.set()
        started = time.monotonic()
        ready = await poll(app, "/health/ready", lambda r: r.status == 503, timeout=10)
        assert b"dependency" in ready.body
        assert time.monotonic() - started < 5
    finally:
        await health.stop_async()


async def test_an_error_is_a_verdict_however_busy_the_loop() -> None:
    """Only a timeout is run again after a held-up run: a dependency that errors is
    called once per run, and its failure stands."""
    from health_middleware import Health

    calls = {"n": 0}
    health = Health(timeout=0.3)

    @health.check("blocker", critical=False)
    async def blocker() -> None:
        time.sleep(0.4)

    @health.check("refusing")
    async def refusing() -> None:
        calls["n"] += 1
        raise ConnectionRefusedError("down")

    report = await health.run_once_async()
    checks = {c.name: c.outcome.output for c in report.checks}
    assert checks["refusing"] == "ConnectionRefusedError"
    assert calls["n"] == 1


def test_the_check_command_never_waits_for_a_check_that_ignores_cancellation() -> None:
    code = """
import asyncio
from health_middleware import Health
health = Health(timeout=0.5)

@health.check("stubborn", critical=False)
async def stubborn():
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # a driver that retries
"""
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code + "\nimport sys\nfrom health_middleware.cli.command import run"
            "\nsys.exit(run(health))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr  # warn: the non-critical check failed
    assert "timeout" in result.stdout
    assert time.monotonic() - started < 10


def test_a_sync_check_holding_the_gil_in_a_blocking_call_is_blamed_not_credited() -> None:
    """A driver blocked in C with the GIL held uses no CPU: it is still its own time."""
    import ctypes

    from health_middleware import Health

    holding = ctypes.PyDLL(None)
    health = Health(timeout=0.5)
    health.add_check("driver", lambda: holding.usleep(1_200_000), critical=False)
    health.add_check("quick", lambda: time.sleep(0.01))
    report = health.run_once()
    checks = {c.name: (c.status, c.outcome.output) for c in report.checks}
    assert checks["driver"] == ("fail", "timeout")
    assert checks["quick"] == ("pass", None)
