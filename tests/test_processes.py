"""Processes with no web app: ``health.serve()`` (the refresher and the health port on
threads of their own), ``health.heartbeat()`` (progress, not just presence), and the
probe port's watch of the main port (``listen(watch=...)``).

Real programs (``tests.apps.served``, plain and asyncio) answer every endpoint over
HTTP, flip readiness with a failing check, fail liveness when their work loop stops
beating, keep the port in the parent when they fork, and leave no thread and no open
port after ``stop()``. The watch is shown against a main port served by another
process (stopped with SIGSTOP, then killed) and a healthy uvicorn that never fails it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from health_middleware import Health
from health_middleware.config.environment import LISTEN, WATCH
from health_middleware.config.validation import StartError
from health_middleware.engine.heartbeat import NOT_BEATEN
from tests.support import REPO, Response, answer, daemon, free_port, get, server, stop, uvicorn

SLACK = 1.5  # seconds of scheduling noise allowed on a shared 2-core machine


def until(
    port: int, path: str, wanted: Callable[[Response], bool], within: float, what: str
) -> float:
    """Poll ``path`` until ``wanted``; return how long it took (fail past ``within``)."""
    started = time.monotonic()
    while True:
        response = answer(port, path)
        if response is not None and wanted(response):
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"{what}: last {response}"
        time.sleep(0.05)


def status(code: int) -> Callable[[Response], bool]:
    return lambda response: response.status == code


# -- in one process ------------------------------------------------------------------


def test_a_heartbeat_is_starting_until_its_first_beat_and_a_one_shot_run_says_so() -> None:
    health = Health(interval=0.2)
    beat = health.heartbeat("loop", max_age=5)
    assert beat.age is None
    health.serve(0, "127.0.0.1")
    try:
        assert health.listening is not None
        port = health.listening[1]
        until(port, "/health/started", status(503), 5, "started")
        assert get(port, "/health/live").status == 200  # live: not a failure
        ready = get(port, "/health/ready")
        assert ready.status == 503
        assert ready.json()["output"] == "starting: 1 of 1 checks have not completed yet"
        # The check command runs in a fresh process, where nothing beats: a warning.
        report = health.run_once()
        assert report.status == "warn"
        assert [c.outcome.output for c in report.checks] == [NOT_BEATEN]
        beat()
        until(port, "/health/ready", status(200), 5, "ready after the first beat")
        assert get(port, "/health/started").status == 200
        doc = get(port, "/health").json()
        (result,) = doc["checks"]["loop"]
        assert result["observedUnit"] == "s"
        assert 0 <= result["observedValue"] < 5
        assert health.run_once().status == "pass"  # beaten in this process
    finally:
        health.stop()


def test_a_paused_heartbeat_passes_until_its_next_beat() -> None:
    health = Health(interval=0.2)
    beat = health.heartbeat("loop", max_age=0.2, interval=0.05)
    beat()
    beat.pause()
    time.sleep(0.4)
    assert health.run_once().status == "pass"  # waiting on purpose
    beat()
    time.sleep(0.4)
    report = health.run_once()
    assert report.status == "fail"  # resumed by the beat, then stopped
    assert report.checks[0].outcome.output is not None
    assert "no beat for" in report.checks[0].outcome.output


def test_heartbeat_options() -> None:
    health = Health()
    beat = health.heartbeat("consumer", max_age=12, tags=["work"], critical=False)
    (state,) = health.engine.results.states()
    check = state.check
    assert (check.tags, check.scope, check.critical) == (frozenset({"work"}), "process", False)
    assert check.interval == 1.0  # checked every second: a stop is seen within 13 s
    assert beat.max_age == 12
    assert health.heartbeat("short", max_age=0.5).max_age == 0.5
    assert [s.check.interval for s in health.engine.results.states()][-1] == 0.5
    assert "live" in [s.check.tags for s in health.engine.results.states()][-1]
    with pytest.raises(ValueError, match="scope"):
        health.heartbeat("shared", scope="instance")
    with pytest.raises(ValueError, match="max_age"):
        health.heartbeat("never", max_age=0)
    with pytest.raises(ValueError, match="already registered"):
        health.heartbeat("consumer")


def test_serve_refuses_a_different_port_set_by_listen() -> None:
    health = Health()
    port = free_port()
    health.listen(port, "127.0.0.1")
    with pytest.raises(ValueError, match=f"already set to 127.0.0.1:{port}"):
        health.serve(port + 1 if port < 65535 else 1, "127.0.0.1")
    assert health.listening is None


# -- real programs ---------------------------------------------------------------------


class Program:
    """A running ``tests.apps.served``: commands on its stdin, JSON lines back."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process, self.port = process, port

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the program exited {self.process.poll()}"
        parsed: dict[str, Any] = orjson.loads(line)
        return parsed

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()
        return self.read()


@contextlib.contextmanager
def program(mode: str, env: dict[str, str]) -> Iterator[Program]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.apps.served", mode],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "HM_PORT": str(port), **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    running = Program(process, port)
    try:
        assert running.read() == {"served": True}  # serve() returned at once
        yield running
    finally:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        stop(process)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.server
@pytest.mark.parametrize("mode", ["plain", "asyncio"])
def test_serve_in_a_program_with_no_web_app(mode: str, tmp_path: Path) -> None:
    flag, pause, max_age = tmp_path / "flag", tmp_path / "pause", 1.0
    env = {"HM_FLAG": str(flag), "HM_PAUSE": str(pause), "HM_MAX_AGE": str(max_age)}
    with program(mode, env) as running:
        port = running.port
        until(port, "/health/ready", status(200), 10, "ready")
        for path in ("/health", "/health/live", "/health/started", "/health/info"):
            assert get(port, path).status == 200, path
        assert get(port, "/health").json()["checks"].keys() == {"work", "flag", "loop"}

        flag.touch()  # a failing check flips readiness, not liveness
        until(port, "/health/ready", status(503), 5, "ready fails with the check")
        assert get(port, "/health/ready").json()["output"] == "failing: flag"
        assert get(port, "/health/live").status == 200
        flag.unlink()
        until(port, "/health/ready", status(200), 5, "ready heals")

        pause.touch()  # the work loop stops beating: liveness fails, then recovers
        failed_after = until(port, "/health/live", status(503), max_age + 1 + SLACK, "live")
        print(f"\n{mode}: liveness failed {failed_after:.2f} s after the beats stopped")
        assert failed_after > max_age * 0.5  # not before the beats are overdue
        assert get(port, "/health/live").json()["output"] == "failing: work"
        pause.unlink()
        until(port, "/health/live", status(200), 3, "live recovers with the beats")

        loops = running.ask("loops")
        assert loops["runs"] > 0
        assert loops["on_program_loop"] is False  # async checks run on the refresher's loop

        forked = running.ask("fork")  # as a prefork pool's child: nothing of ours runs
        assert forked["child"] == {
            "listening": None,
            "running": False,
            "threads": [],
            "beaten": False,
        }
        assert forked["parent_accepts"] is True
        assert get(port, "/health/live").status == 200

        stopped = running.ask("stop")
        assert stopped == {"threads": [], "accepts": False}  # no thread, no port


@pytest.mark.server
def test_the_watch_fails_liveness_when_the_main_port_stops_answering(tmp_path: Path) -> None:
    main_port, interval, misses = free_port(), 0.3, 3
    main = [sys.executable, "-m", "http.server", str(main_port), "--bind", "127.0.0.1"]
    env = {"HM_WATCH": str(main_port), "HM_WATCH_INTERVAL": str(interval), "HM_MAX_AGE": "30"}
    bound = interval * misses + 1 + SLACK  # the misses, then one run of the check
    with daemon(main, main_port) as main_server, program("plain", env) as running:
        port = running.port
        until(port, "/health/ready", status(200), 10, "ready once the main port answered")
        assert get(port, "/health").json()["checks"]["main-port"][0]["status"] == "pass"

        os.kill(main_server.pid, signal.SIGSTOP)  # it accepts (the backlog), never answers
        try:
            failed_after = until(port, "/health/live", status(503), bound, "live fails")
            print(f"\nliveness failed {failed_after:.2f} s after the main port stopped")
            assert failed_after > interval * (misses - 1)  # after the misses, not the first
            assert get(port, "/health/live").json()["output"] == "failing: main-port"
        finally:
            os.kill(main_server.pid, signal.SIGCONT)
        until(port, "/health/live", status(200), bound, "live recovers with the answers")

        stop(main_server)  # gone: connections refused
        until(port, "/health/live", status(503), bound, "live fails with the port closed")


@pytest.mark.server
def test_a_healthy_main_port_never_fails_the_watch() -> None:
    probe_port, seconds = free_port(), 4.0
    env = {
        "HM_LISTEN": f"127.0.0.1:{probe_port}",
        "HM_WATCH": "{port}",  # the server's own main port
        "HM_WATCH_INTERVAL": "0.3",
    }
    with server(uvicorn("tests.apps.busy:asgi_app"), env):
        until(probe_port, "/health/ready", status(200), 10, "ready once the main port answered")
        statuses = set()
        deadline = time.monotonic() + seconds  # about 13 watch intervals
        while time.monotonic() < deadline:
            response = answer(probe_port, "/health/live")
            statuses.add(None if response is None else response.status)
            time.sleep(0.05)
        assert statuses == {200}
        (watch,) = get(probe_port, "/health").json()["checks"]["main-port"]
        assert watch["status"] == "pass"
        assert watch["observedValue"] < 0.9 + SLACK


def test_watch_options_and_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="probe port itself"):
        Health().listen(8081, watch=8081)
    with pytest.raises(ValueError, match="watch"):
        Health().listen(8081, watch="nowhere:")
    with pytest.raises(TypeError, match="watch"):
        Health().listen(8081, watch=True)
    with pytest.raises(ValueError, match="watch_interval"):
        Health().listen(8081, watch=8000, watch_interval=0)
    with pytest.raises(ValueError, match="watch_misses"):
        Health().listen(8081, watch=8000, watch_misses=0)
    health = Health()
    health.listen(8081, watch="[::1]:8000", watch_interval=2, watch_misses=4)
    watch = health.runtime.watch
    assert watch is not None
    assert (watch.host, watch.port, watch.path, watch.interval) == ("::1", 8000, "/health/live", 2)
    (state,) = health.engine.results.states()
    assert state.check.name == "main-port"
    assert "live" in state.check.tags

    # The variable, taken as the runtime starts (every way of starting).
    monkeypatch.setenv(WATCH, "8000")
    with pytest.raises(StartError, match=LISTEN):
        Health().runtime.start_in_thread()  # the watch runs on the probe port: it needs one
    monkeypatch.setenv(WATCH, "nowhere:x")
    monkeypatch.setenv(LISTEN, f"127.0.0.1:{free_port()}")
    with pytest.raises(StartError, match=WATCH):
        Health().runtime.start_in_thread()
    monkeypatch.setenv(WATCH, "8000")
    watched = Health()
    watched.runtime.start_in_thread()
    try:
        watch = watched.runtime.watch
        assert watch is not None
        assert (watch.host, watch.port) == ("127.0.0.1", 8000)
        assert [s.check.name for s in watched.engine.results.states()] == ["main-port"]
    finally:
        watched.stop()


def test_stop_joins_the_check_threads_but_not_a_hung_one() -> None:
    health = Health(interval=0.05, timeout=0.2)
    release = threading.Event()
    health.add_check("quick", lambda: True)
    health.add_check("hung", lambda: release.wait(30), critical=False)
    before = set(threading.enumerate())
    health.serve(0, "127.0.0.1")
    try:
        time.sleep(0.6)  # the hung check has timed out: its thread is abandoned
    finally:
        started = time.monotonic()
        health.stop()
        took = time.monotonic() - started
    left = [t.name for t in set(threading.enumerate()) - before]
    release.set()
    assert len(left) == 1, left  # only the thread the hung check holds
    assert left[0].startswith("health-check")
    assert took < 1.5  # the hung thread was not waited for (2 s)


def test_consumers_started_by_one_supervisor_share_nothing(tmp_path: Path) -> None:
    """Two multiprocessing children each serving a port of its own are two instances:
    one's failing check and drain never reach the other."""
    import multiprocessing

    from tests.apps.consumers import consumer

    ports = [free_port(), free_port()]
    flags = [tmp_path / "a", tmp_path / "b"]
    flags[0].touch()  # A's dependency is down; B's is fine
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=consumer, args=(p, str(f)))
        for p, f in zip(ports, flags, strict=True)
    ]
    for child in children:
        child.start()
    try:
        until(ports[0], "/health/ready", status(503), 20, "A failing")
        until(ports[1], "/health/ready", status(200), 20, "B ready")
        assert get(ports[1], "/health").json()["status"] == "pass"
    finally:
        for child in children:
            child.kill()
            child.join(5)


def test_serve_at_a_modules_top_leaves_a_spawn_pool_working(tmp_path: Path) -> None:
    """Each spawned child imports the module again, and its serve() finds the port
    taken by its parent: it serves nothing and says so, rather than die (and be
    restarted for ever)."""
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "tests.apps.consumers"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "HM_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "285"
    assert "it serves nothing" in result.stderr


def test_a_main_port_that_never_answers_fails_liveness_and_is_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = free_port()  # nothing listens there
    health = Health(interval=0.1)
    health.listen(0, "127.0.0.1", watch=closed, watch_interval=0.2, watch_misses=3)
    health.serve(0, "127.0.0.1")
    try:
        assert health.listening is not None
        port = health.listening[1]
        until(port, "/health/live", status(503), 10, "liveness failing")
        checks = get(port, "/health").json()["checks"]
        assert checks["main-port"][0]["status"] == "fail"
    finally:
        health.stop()
    assert f"the main port 127.0.0.1:{closed} has not answered" in caplog.text
