"""The refresher: intervals, timeouts, single-flight, bounded threads, staleness."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from health_middleware import CheckResult, Health, HealthMiddleware
from tests.support import call, call_without_waiting, poll
from tests.support import threads as running_threads
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
        # Every check's first result in (the two hung ones time out in either order).
        first = await poll(app, "/health", lambda r: len(r.json()["checks"]) == 3)
        threads = running_threads()
        checks = report(first)
        assert checks["hung-sync"]["status"] == "fail"
        assert checks["hung-sync"]["output"] == "timeout"
        assert first.json()["status"] == "warn"  # non-critical failures degrade, not fail
        for _ in range(40):  # ~40 intervals: every probe answers at once, in one step
            for path in ("/health", "/health/ready", "/health/live"):
                call_without_waiting(app, path)
            await asyncio.sleep(0.005)
        assert running_threads() == threads  # the hung thread is not joined by others
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


# -- no value a check produces can stop the refresher -----------------------------------

SURROGATE = "\udcff"  # e.g. a file name that is not valid UTF-8


class Hostile(Exception):
    pass


def _hostile_results() -> dict[str, Any]:
    def bad_output() -> CheckResult:
        return CheckResult("warn", output=f"file {SURROGATE}.log")

    def bad_unit() -> CheckResult:
        return CheckResult(observed_value=1, observed_unit=SURROGATE)

    def bad_component() -> CheckResult:
        return CheckResult(component_id=SURROGATE, links={"about": SURROGATE})

    def bad_message() -> None:
        raise Hostile(f"cannot open {SURROGATE}")

    def bad_kind() -> None:
        raise type(f"Error{SURROGATE}", (Exception,), {})()

    def bad_value() -> CheckResult:
        return CheckResult(observed_value={"path": SURROGATE})

    return {
        "output": bad_output,
        "unit": bad_unit,
        "component": bad_component,
        "message": bad_message,
        "kind": bad_kind,
        "value": bad_value,
    }


@pytest.mark.parametrize("exposed", [False, True])
async def test_a_lone_surrogate_cannot_stop_the_refresher(exposed: bool) -> None:
    token = "details-token-0123456789abcdef"
    health = Health(interval=0.05, stale_after=2, expose_errors=exposed, details_token=token)
    for name, fn in _hostile_results().items():
        health.add_check(name, fn, critical=False)
    flag = {"ok": True}
    health.add_check("flip", lambda: flag["ok"])
    app = HealthMiddleware(plain_app, health)
    first = report(await poll(app, "/health", lambda r: r.status == 200))
    assert first["output"]["output"] == "file \\udcff.log"
    assert first["unit"]["observedUnit"] == "\\udcff"
    assert first["value"]["status"] == "fail"  # an unencodable value is refused clearly
    assert "not JSON-serialisable" in first["value"]["output"]
    # The refresher is alive: a later change still arrives, and nothing goes stale.
    flag["ok"] = False
    await poll(app, "/health/ready", lambda r: r.status == 503)
    await asyncio.sleep(2.2)  # past stale_after
    for path in ("/health", "/health/live", "/health/ready", "/health/started"):
        response = await call(app, path)
        assert "stale" not in response.body.decode(), path
    assert (await call(app, "/health/live")).status == 200
    await health.stop_async()


async def test_a_format_that_raises_is_contained_to_its_endpoint() -> None:
    class Broken:
        def render(self, *args: Any) -> Any:
            raise RuntimeError("bad format")

    health = Health(interval=0.05, stale_after=2)
    flag = {"ok": True}
    health.add_check("flip", lambda: flag["ok"])
    health.endpoint("/broken", format=Broken())
    app = HealthMiddleware(plain_app, health)
    await poll(app, "/health", lambda r: r.status == 200)
    broken = await call(app, "/broken")
    assert broken.status == 500
    assert broken.json() == {
        "status": "fail",
        "output": "the report could not be rendered: RuntimeError",
    }
    flag["ok"] = False  # the refresher still works for everything else
    await poll(app, "/health/ready", lambda r: r.status == 503)
    await asyncio.sleep(2.2)
    assert (await call(app, "/health/live")).status == 200
    await health.stop_async()


# -- a restarted refresher starts every check afresh ----------------------------------------


def test_a_run_left_in_flight_by_a_dead_loop_does_not_freeze_its_check() -> None:
    """The refresher's loop dies with a run in flight that resists cancellation: the
    refresher started in its place must run the check again, not wait for it forever."""
    from werkzeug.test import Client

    from health_middleware import WSGIHealthMiddleware
    from tests.test_wsgi import wsgi_app

    calls = {"n": 0}
    forever = threading.Event()

    async def stubborn() -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            while not forever.is_set():
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    continue  # resists cancellation

    health = Health(interval=0.05, timeout=60, stale_after=2)
    health.add_check("stubborn", stubborn)
    client = Client(WSGIHealthMiddleware(wsgi_app, health))
    deadline = time.monotonic() + 10
    while calls["n"] < 2:
        client.get("/health")
        assert time.monotonic() < deadline
        time.sleep(0.01)
    runtime = health.runtime.running  # the refresher's thread and loop: stop the loop under it
    assert runtime is not None
    assert runtime.thread is not None
    runtime.loop.call_soon_threadsafe(runtime.loop.stop)
    runtime.thread.join(5)
    assert not runtime.thread.is_alive()
    time.sleep(2.1)  # stale: the next probe revives the refresher
    deadline = time.monotonic() + 10
    while calls["n"] < 3:
        client.get("/health")
        assert time.monotonic() < deadline, "the check never ran again"
        time.sleep(0.01)
    forever.set()
    health.stop()


# -- hung checks never starve the others, and the pool's queue stays bounded ----------------


async def test_hung_checks_that_passed_before_never_starve_a_healthy_one() -> None:
    hang = threading.Event()
    release = threading.Event()
    runs = {"n": 0}

    def flaky() -> None:  # passes, then hangs: a check the pool has seen return
        if hang.is_set():
            release.wait(30)

    def healthy() -> None:
        runs["n"] += 1

    health = Health(interval=0.05, timeout=0.1, max_threads=2)
    for i in range(6):
        health.add_check(f"flaky-{i}", flaky, critical=False)
    health.add_check("healthy", healthy)
    app = HealthMiddleware(plain_app, health)
    try:
        await poll(app, "/health", lambda r: r.status == 200)
        hang.set()
        await asyncio.sleep(0.5)
        before = runs["n"]
        readiness = []
        for _ in range(20):  # 1 s
            readiness.append((await call(app, "/health/ready")).status)
            await asyncio.sleep(0.05)
        assert runs["n"] - before >= 10  # it kept its interval (0.05 s) within a margin
        assert set(readiness) == {200}
        checks = report(await call(app, "/health"))
        assert checks["healthy"]["status"] == "pass"
        assert {checks[f"flaky-{i}"].get("output") for i in range(6)} == {"timeout"}
    finally:
        release.set()
        await health.stop_async()


async def test_a_single_thread_pool_still_runs_the_healthy_check() -> None:
    release = threading.Event()
    runs = {"n": 0}
    health = Health(interval=0.05, timeout=0.1, max_threads=1)
    health.add_check("hung", lambda: release.wait(30), critical=False)

    def healthy() -> None:
        runs["n"] += 1

    health.add_check("healthy", healthy)
    app = HealthMiddleware(plain_app, health)
    try:
        await poll(app, "/health", lambda r: "healthy" in r.json().get("checks", {}))
        await asyncio.sleep(0.3)
        before = runs["n"]
        await asyncio.sleep(1.0)
        assert runs["n"] - before >= 10
        assert (await call(app, "/health/ready")).status == 200
    finally:
        release.set()
        await health.stop_async()


def test_runs_that_never_started_leave_no_trace_in_the_pool() -> None:
    """Runs that wait past their timeout are removed from the queue: it never holds
    more than one run per check, however long the others keep the threads."""
    from health_middleware.engine.pool import CheckPool

    pool = CheckPool(1)
    release = threading.Event()
    busy = pool.submit(lambda: release.wait(30))
    deadline = time.monotonic() + 5
    while not busy.running():
        assert time.monotonic() < deadline
        time.sleep(0.001)
    waiting = [pool.submit(lambda: None) for _ in range(50)]
    for future in waiting:
        assert pool.abandon(future) is False  # it never started
        assert future.cancelled()
    assert pool.queued() == 0
    assert pool.abandon(busy) is True  # started: its thread finishes it outside the count
    done = pool.submit(lambda: "ran")
    assert done.result(timeout=5) == "ran"  # the place it gave back is used at once
    release.set()
    pool.shutdown()


# -- user code that runs while a result is turned into an outcome -------------------------


class _Meta(type):
    @property
    def __name__(cls) -> str:  # type: ignore[override]
        raise RuntimeError("no name for you")


class Nameless(Exception, metaclass=_Meta):
    pass


class Interrupting(Exception):
    def __str__(self) -> str:
        raise KeyboardInterrupt


class Exiting:
    def __repr__(self) -> str:
        raise SystemExit(3)


async def test_hostile_str_repr_and_names_fail_the_check_not_the_loop() -> None:
    def interrupting() -> None:
        raise Interrupting

    def exiting() -> Any:
        return Exiting()

    def nameless() -> None:
        raise Nameless

    async def interrupting_async() -> None:
        raise Interrupting

    health = Health(interval=0.05, expose_errors=True)
    for name, fn in (
        ("interrupting", interrupting),
        ("exiting", exiting),
        ("nameless", nameless),
        ("interrupting-async", interrupting_async),
    ):
        health.add_check(name, fn, critical=False)
    health.add_check("fine", lambda: True)
    app = HealthMiddleware(plain_app, health)
    checks = report(
        await poll(app, "/health", lambda r: r.status == 200 and len(r.json()["checks"]) == 5)
    )
    assert {checks[n]["status"] for n in checks if n != "fine"} == {"fail"}
    assert checks["fine"]["status"] == "pass"
    await asyncio.sleep(0.3)  # the loop is alive and keeps running them
    assert (await call(app, "/health")).status == 200
    await health.stop_async()


async def test_slow_checks_do_not_fail_a_healthy_one_that_waits_for_a_thread() -> None:
    """A run's timeout counts from when it starts, not from when it was queued: a
    healthy check queued behind slow ones must not be failed for their slowness."""
    changes: list[tuple[str | None, str]] = []
    health = Health(max_threads=2, interval=0.2)
    for name in ("slow-1", "slow-2"):
        health.add_check(name, lambda: time.sleep(1.3), timeout=1.0, critical=False)
    health.add_check("healthy", lambda: True, interval=0.5, timeout=0.3)
    health.on_change(lambda name, old, new: changes.append((name, new)))
    app = HealthMiddleware(plain_app, health)
    await poll(app, "/health/ready", lambda r: r.status == 200)
    await asyncio.sleep(3.0)
    assert ("healthy", "fail") not in changes
    assert (None, "fail") not in changes
    assert (await call(app, "/health/ready")).status == 200
    await health.stop_async()


async def test_every_published_snapshot_reaches_on_publish_and_a_broken_one_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Any] = []
    health = Health(interval=0.05, timeout=0.5)
    flag = {"ok": True}
    health.add_check("flag", lambda: flag["ok"])

    def broken(snapshot: Any) -> None:
        raise RuntimeError("a broken subscriber")

    health.engine.callbacks.on_publish(broken)
    health.engine.callbacks.on_publish(seen.append)
    app = HealthMiddleware(plain_app, health)
    try:
        await poll(app, "/health/ready", lambda r: r.status == 200)
        flag["ok"] = False
        await poll(app, "/health/ready", lambda r: r.status == 503)
        assert health.snapshot in seen
        statuses = [s.answers["/health/ready"].get.status for s in seen]
        assert 200 in statuses
        assert 503 in statuses[statuses.index(200) :]  # in the order they were published
        failures = [r for r in caplog.records if "on_publish callback raised" in r.getMessage()]
        assert len(failures) == 1
    finally:
        await health.stop_async()
    with pytest.raises(TypeError, match="on_publish needs a callable"):
        health.engine.callbacks.on_publish("not callable")  # type: ignore[arg-type]
