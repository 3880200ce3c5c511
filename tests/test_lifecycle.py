"""Probe semantics in every state: starting, serving, degraded, flapping, draining."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from health_middleware import Health, HealthMiddleware, WSGIHealthMiddleware
from tests.support import Response, call, gunicorn, poll, server
from tests.test_asgi import plain_app
from tests.test_wsgi import wsgi_app

TOKEN = "k8s-prestop-token-0123456789"


def statuses(responses: dict[str, Response]) -> dict[str, int]:
    return {path: r.status for path, r in responses.items()}


async def all_paths(app: HealthMiddleware) -> dict[str, int]:
    paths = ("/health", "/health/live", "/health/ready", "/health/started")
    return {p.rsplit("/", 1)[-1]: (await call(app, p)).status for p in paths}


async def test_groups_count_the_right_checks() -> None:
    state = {"db": True, "cache": True, "worker": True, "search": True}
    health = Health(interval=0.02)
    health.add_check("db", lambda: state["db"])  # critical: readiness
    health.add_check("cache", lambda: state["cache"], critical=False)  # nobody's probe
    health.add_check("worker", lambda: state["worker"], critical=False, tags={"live"})
    health.add_check("search", lambda: state["search"], critical=False, tags={"ready", "s"})
    health.endpoint("/search", group="s", details=False)
    app = HealthMiddleware(plain_app, health)
    await poll(app, "/health", lambda r: r.status == 200)

    async def after(change: dict[str, bool], expected: dict[str, int]) -> None:
        state.update(change)
        await asyncio.sleep(0.15)
        got = await all_paths(app)
        got["search"] = (await call(app, "/search")).status
        assert got == {"started": 200, **expected}, change

    await after({"db": False}, {"health": 503, "live": 200, "ready": 503, "search": 200})
    await after(
        {"db": True, "cache": False}, {"health": 200, "live": 200, "ready": 200, "search": 200}
    )
    await after(
        {"cache": True, "worker": False}, {"health": 200, "live": 503, "ready": 200, "search": 200}
    )
    await after(
        {"worker": True, "search": False}, {"health": 200, "live": 200, "ready": 503, "search": 503}
    )
    # The whole degrades to warn on a non-critical failure: 200, and says why.
    doc = (await call(app, "/health")).json()
    assert doc["status"] == "warn"
    assert doc["output"] == "failing: search"
    await health.stop_async()


async def test_before_the_first_round() -> None:
    release = threading.Event()
    health = Health(interval=60, timeout=5)
    health.add_check("slow", lambda: release.wait(10) and None)
    health.add_check("live-one", lambda: True, tags={"live"})
    app = HealthMiddleware(plain_app, health)
    await poll(app, "/health", lambda r: "live-one" in r.json()["checks"])
    assert await all_paths(app) == {"health": 503, "live": 200, "ready": 503, "started": 503}
    doc = (await call(app, "/health")).json()
    assert doc["output"] == "starting: 1 of 2 checks have not completed yet: slow"
    release.set()
    await poll(app, "/health/started", lambda r: r.status == 200)
    assert await all_paths(app) == {"health": 200, "live": 200, "ready": 200, "started": 200}
    await health.stop_async()


async def test_wait_first_round_answers_the_first_request_after_it_asgi() -> None:
    health = Health(interval=60, timeout=2, wait_first_round=True)

    @health.check("slowish")
    async def slowish() -> None:
        await asyncio.sleep(0.2)

    app = HealthMiddleware(plain_app, health)
    assert (await call(app, "/health/ready")).status == 200  # the very first request
    await health.stop_async()


def test_wait_first_round_answers_the_first_request_after_it_wsgi() -> None:
    health = Health(interval=60, timeout=2, wait_first_round=True)
    health.add_check("slowish", lambda: time.sleep(0.2))
    client = Client(WSGIHealthMiddleware(wsgi_app, health))
    assert client.get("/health/ready").status_code == 200
    health.stop()


def test_wait_first_round_is_bounded_by_the_timeouts() -> None:
    release = threading.Event()
    health = Health(interval=60, timeout=0.2, wait_first_round=True)
    health.add_check("hung", lambda: release.wait(30))
    client = Client(WSGIHealthMiddleware(wsgi_app, health))
    response = client.get("/health/ready")  # the hung check times out: answered, failing
    release.set()
    health.stop()
    assert response.status_code == 503


async def test_drain() -> None:
    health = Health(interval=0.05)
    health.add_check("ok", lambda: True)
    health.endpoint("/lb", group="all", details=False, drain=True)
    app = HealthMiddleware(plain_app, health)
    await poll(app, "/health/started", lambda r: r.status == 200)
    health.drain()  # at once: no refresher round needed
    assert await all_paths(app) == {"health": 200, "live": 200, "ready": 503, "started": 200}
    assert (await call(app, "/health/ready")).json() == {"status": "fail", "output": "draining"}
    assert (await call(app, "/lb")).status == 503
    await asyncio.sleep(0.2)
    assert (await call(app, "/health/ready")).status == 503  # it stays drained
    await health.stop_async()


async def test_status_codes_per_endpoint() -> None:
    health = Health(interval=0.05)
    health.add_check("soft", lambda: False, critical=False)
    health.endpoint("/lb", status_codes={"pass": 200, "warn": 299, "fail": 500})
    app = HealthMiddleware(plain_app, health)
    response = await poll(app, "/lb", lambda r: r.status != 500)  # 500 while starting
    assert response.status == 299
    await health.stop_async()


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_prestop_needs_the_token_then_drains_and_answers_after_the_delay(interface: str) -> None:
    health = Health(interval=0.05)
    health.add_check("ok", lambda: True)
    health.prestop(TOKEN, delay=0.3)

    if interface == "wsgi":
        client = Client(WSGIHealthMiddleware(wsgi_app, health))

        def request(path: str, method: str = "GET", token: str | None = None) -> Response:
            headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
            r = client.open(path, method=method, headers=headers)
            return Response(r.status_code, dict(r.headers), r.get_data())
    else:
        app = HealthMiddleware(plain_app, health)
        loop = asyncio.new_event_loop()

        def request(path: str, method: str = "GET", token: str | None = None) -> Response:
            from tests.support import _collect, http_scope

            scope = http_scope(path, method)
            if token is not None:
                scope["headers"].append((b"authorization", f"Bearer {token}".encode()))
            messages: list[dict[str, Any]] = []

            async def send(m: dict[str, Any]) -> None:
                messages.append(m)

            async def go() -> None:
                await app(scope, None, send)  # type: ignore[arg-type]
                await asyncio.sleep(0.05)  # let the refresher run between requests

            loop.run_until_complete(go())
            return _collect(messages)

    deadline = time.monotonic() + 10
    while request("/health/ready").status != 200:
        assert time.monotonic() < deadline
    no_token = request("/health/prestop")
    wrong = request("/health/prestop", token="x" * len(TOKEN))
    assert no_token.status == wrong.status == 401
    assert no_token.body == wrong.body  # a wrong token learns nothing more than none
    assert request("/health/prestop", "DELETE", TOKEN).status == 405
    assert request("/health/ready").status == 200  # nothing drained yet
    started = time.monotonic()
    done = request("/health/prestop/", token=TOKEN)
    assert time.monotonic() - started >= 0.3
    assert done.status == 200
    assert request("/health/ready").status == 503
    assert request("/health/live").status == 200
    if interface == "asgi":
        loop.run_until_complete(health.stop_async())
        loop.close()
    else:
        health.stop()


def test_bad_prestop_configuration() -> None:
    with pytest.raises(ValueError, match="16 printable"):
        Health().prestop("short")
    with pytest.raises(ValueError, match="delay"):
        Health().prestop(TOKEN, delay=0)
    health = Health()
    health.prestop(TOKEN)
    with pytest.raises(ValueError, match="already exists"):
        health.endpoint("/health/prestop")


def test_a_drain_file_reaches_every_process(tmp_path: Path) -> None:
    marker = tmp_path / "draining"
    workers = [Health(interval=0.05, drain_file=marker) for _ in range(2)]
    clients = [Client(WSGIHealthMiddleware(wsgi_app, h)) for h in workers]
    for client in clients:
        deadline = time.monotonic() + 10
        while client.get("/health/ready").status_code != 200:
            assert time.monotonic() < deadline
    workers[0].drain()
    assert marker.exists()
    assert clients[0].get("/health/ready").status_code == 503
    deadline = time.monotonic() + 3  # the other notices on its next tick (1 s)
    while clients[1].get("/health/ready").status_code != 503:
        assert time.monotonic() < deadline, "the drain did not reach the other process"
        time.sleep(0.02)
    for h in workers:
        h.stop()


async def test_on_change_and_logging_once_per_transition(caplog: pytest.LogCaptureFixture) -> None:
    outcomes = iter([True] * 5 + [False] * 5 + [True] * 1000)
    events: list[tuple[str | None, str | None, str]] = []
    health = Health(interval=0.01)
    health.add_check("db", lambda: next(outcomes))
    health.add_check("steady", lambda: True, critical=False)
    health.on_change(lambda name, old, new: events.append((name, old, new)))

    def broken(name: str | None, old: str | None, new: str) -> None:
        raise RuntimeError("a listener bug")

    health.on_change(broken)
    caplog.set_level(logging.INFO, logger="health_middleware")
    app = HealthMiddleware(plain_app, health)
    await call(app, "/health")
    await asyncio.sleep(0.4)  # ~40 runs of each check
    await health.stop_async()
    assert ("db", None, "pass") in events
    assert ("steady", None, "pass") in events
    assert [e for e in events if e[0] == "db"][1:] == [
        ("db", "pass", "fail"),
        ("db", "fail", "pass"),
    ]
    assert [e for e in events if e[0] is None] == [
        (None, None, "pass"),
        (None, "pass", "fail"),
        (None, "fail", "pass"),
    ]
    failing = [r for r in caplog.records if "check 'db' is failing" in r.getMessage()]
    assert len(failing) == 1
    assert "an on_change callback raised" in caplog.text


def test_a_live_tagged_datastore_check_warns(caplog: pytest.LogCaptureFixture) -> None:
    Health().add_check("db", lambda: True, component_type="datastore", tags={"live"})
    assert "restart storm" in caplog.text
    caplog.clear()
    Health().add_check("db", lambda: True, component_type="datastore", tags={"ready"})
    assert "restart storm" not in caplog.text


@pytest.mark.server
def test_prestop_drains_every_gunicorn_worker(tmp_path: Path) -> None:
    env = {
        "HM_TOKEN": TOKEN,
        "HM_DRAIN_FILE": str(tmp_path / "drain"),
        "HM_INTERVAL": "0.2",
        "HM_PRESTOP_DELAY": "1.5",
    }
    args = gunicorn("tests.apps.flagged:wsgi_app", "-w", "2", "-k", "gthread", "--threads", "4")
    with server(args, env) as running:
        deadline = time.monotonic() + 15
        while {running.get("/health/ready").status for _ in range(6)} != {200}:
            assert time.monotonic() < deadline, running.output()
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        connection.request("GET", "/health/prestop", headers={"Authorization": f"Bearer {TOKEN}"})
        answer = connection.getresponse()
        assert answer.status == 200
        connection.close()
        # After the delay every worker has drained: readiness fails, liveness holds.
        assert {running.get("/health/ready").status for _ in range(20)} == {503}
        assert {running.get("/health/live").status for _ in range(20)} == {200}


# -- a worker's own exit never drains its siblings or successors ----------------------------


async def test_a_workers_lifespan_shutdown_drains_only_itself(tmp_path: Path) -> None:
    marker = tmp_path / "draining"
    stopping, sibling = (
        Health(interval=0.05, drain_file=marker),
        Health(interval=0.05, drain_file=marker),
    )
    apps = [HealthMiddleware(plain_app, h) for h in (stopping, sibling)]
    for app in apps:
        await poll(app, "/health/ready", lambda r: r.status == 200)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for message in ({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}):
        await inbox.put(message)

    async def send(message: Any) -> None:
        pass

    await apps[0]({"type": "lifespan"}, inbox.get, send)  # type: ignore[arg-type]
    assert stopping.draining
    assert not marker.exists()
    await asyncio.sleep(1.2)  # a refresher tick: the sibling would have seen a file
    assert (await call(apps[1], "/health/ready")).status == 200
    await sibling.stop_async()


def test_a_drain_file_left_by_a_gone_instance_is_ignored(tmp_path: Path) -> None:
    import subprocess
    import sys

    from health_middleware.instance.master import current, start_time

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone_started = start_time(gone.pid)
    gone.wait()
    marker = tmp_path / "draining"
    health = Health(interval=0.05, drain_file=marker)
    client = Client(WSGIHealthMiddleware(wsgi_app, health))
    for owner in (
        f"{gone.pid} {gone_started}\n",  # an instance that has exited
        f"{os.getpid()} 1\n",  # a live pid, but reused: another start time
        "",  # a file from an older version, or touched by hand
    ):
        marker.write_text(owner)
        deadline = time.monotonic() + 10
        while client.get("/health/ready").status_code != 200:
            assert time.monotonic() < deadline
        time.sleep(1.2)  # at least one refresher tick has read the file
        assert client.get("/health/ready").status_code == 200, owner
    marker.write_text(current().encode())  # this instance, alive: a drain
    deadline = time.monotonic() + 3
    while client.get("/health/ready").status_code != 503:
        assert time.monotonic() < deadline
    health.stop()


@pytest.mark.server
def test_recycled_workers_never_drain_the_instance(tmp_path: Path) -> None:
    """gunicorn with uvicorn's worker and --max-requests recycles workers all the
    time (probes count toward the limit): readiness must stay 200 throughout, and
    after, for every current and future worker."""
    env = {"HM_DRAIN_FILE": str(tmp_path / "drain"), "HM_INTERVAL": "0.2"}
    args = gunicorn(
        "tests.apps.flagged:asgi_app",
        "-k",
        "uvicorn_worker.UvicornWorker",
        "-w",
        "2",
        "--max-requests",
        "20",
    )
    with server(args, env) as running:
        statuses: list[int] = []
        deadline = time.monotonic() + 60
        # Probes until several recycles have happened, however fast this machine
        # answers (150 probes can take 40 ms, before a worker's next tick even logs).
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                statuses.append(running.get("/health/ready").status)
            if len(statuses) >= 150 and running.output().count("request limit") >= 4:
                break
        assert running.output().count("request limit") >= 4  # each worker recycled twice
        settled = [s for s in statuses[-40:]]
        assert settled.count(503) <= 4, statuses  # a new worker's first probe may start
        assert not (tmp_path / "drain").exists()
        time.sleep(1.5)
        assert {running.get("/health/ready").status for _ in range(10)} == {200}


# -- fork: the child renders nothing and takes no lock of the parent's ----------------------


def test_a_fork_renders_nothing_in_the_child_and_the_child_serves() -> None:
    import multiprocessing

    rendered_in: list[int] = []
    inside = threading.Event()
    hold = threading.Event()

    class Recording:
        def render(self, report: Any, service: Any, now: float) -> Any:
            from health_middleware.formats import Rendered

            rendered_in.append(os.getpid())
            if threading.current_thread().name == "renders-in-the-parent":
                inside.set()
                hold.wait(10)  # holds the registry's lock while the fork happens
            return Rendered(200, "text/plain", b"ok")

    health = Health(interval=60)
    health.add_check("ok", lambda: True)
    health.endpoint("/recorded", format=Recording())
    client = Client(WSGIHealthMiddleware(wsgi_app, health))
    parent = os.getpid()
    renderer = threading.Thread(
        target=health.engine.publisher.publish, name="renders-in-the-parent"
    )
    renderer.start()
    assert inside.wait(5)
    context = multiprocessing.get_context("fork")
    reported = context.Queue()

    def child() -> None:
        renders_at_fork = [pid for pid in rendered_in if pid != parent]
        response = client.get("/health/live")
        reported.put((renders_at_fork, response.status_code))

    process = context.Process(target=child)
    process.start()
    try:
        renders_at_fork, status = reported.get(timeout=15)
    finally:
        hold.set()
        renderer.join(5)
        process.join(5)
        if process.is_alive():
            process.kill()
    assert renders_at_fork == []  # the fork hook rendered nothing in the child
    assert status == 200  # and the child served, though the parent held a lock
    health.stop()


@pytest.mark.parametrize(
    "contents",
    [
        b"\xc2\xb2 1\n",
        b"99999999999999999999999 1\n",
        b"0\n",
        b"0 \n",
        b"-1 5\n",
        b"\xff\xfe\x00",
        b"1 1\n",
    ],
)
def test_a_garbled_drain_file_never_stops_publishing(tmp_path: Path, contents: bytes) -> None:
    marker = tmp_path / "draining"
    marker.write_bytes(contents)
    health = Health(interval=0.05, drain_file=marker, stale_after=2)
    client = Client(WSGIHealthMiddleware(wsgi_app, health))
    deadline = time.monotonic() + 10
    while client.get("/health/ready").status_code != 200:
        assert time.monotonic() < deadline, client.get("/health/ready").get_data()
        time.sleep(0.02)
    time.sleep(2.3)  # past stale_after: the refresher kept publishing
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200
    health.stop()
