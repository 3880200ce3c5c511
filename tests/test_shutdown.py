"""Shutdown without a preStop hook: on SIGTERM a worker fails readiness at once, keeps
serving for ``shutdown_delay``, then stops as its server would have. Behind HAProxy with
``retries 0`` (a failed request is a failed request), a steady client sees none."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO, Server, debian_tool, free_port, get, gunicorn, server, uvicorn
from tests.test_haproxy import Stream, running, seen

pytestmark = pytest.mark.server

BACKENDS = {
    "uvicorn-workers": uvicorn("tests.apps.flagged:asgi_app", "--workers", "2"),
    "gunicorn-sync": gunicorn("tests.apps.flagged:wsgi_app", "-w", "2"),
    "gunicorn-gthread": gunicorn(
        "tests.apps.flagged:wsgi_app", "-w", "2", "-k", "gthread", "--threads", "2"
    ),
    "gunicorn-uvicorn-worker": gunicorn(
        "tests.apps.flagged:asgi_app", "-w", "2", "-k", "uvicorn_worker.UvicornWorker"
    ),
}
DELAY = 1.5  # HAProxy notices a failing check after inter x fall = 0.4 s


@contextlib.contextmanager
def strict_haproxy(backends: list[int], tmp_path: Path) -> Iterator[int]:
    """HAProxy that never retries: every refused or cut connection is a client error."""
    binary = debian_tool("haproxy", "haproxy")
    port = free_port()
    servers = "\n".join(
        f"    server app{i + 1} 127.0.0.1:{p} check" for i, p in enumerate(backends)
    )
    config = tmp_path / "strict.cfg"
    config.write_text(
        f"""defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    retries 0
frontend web
    bind 127.0.0.1:{port}
    default_backend app
backend app
    balance roundrobin
    option httpchk
    http-check send meth GET uri /health/ready
    http-check expect status 200
    default-server inter 200ms fall 2 rise 2
{servers}
"""
    )
    with running(binary, config):
        yield port


def _until_both(lb: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        with contextlib.suppress(OSError, AssertionError, Exception):
            if seen(lb, 10) == {"app1", "app2"}:
                return
        assert time.monotonic() < deadline, "HAProxy never routed to both backends"
        time.sleep(0.1)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_sigterm_without_a_prestop_hook_loses_no_request(name: str, tmp_path: Path) -> None:
    env = {"HM_INTERVAL": "0.2", "HM_SHUTDOWN_DELAY": str(DELAY)}
    with (
        server(BACKENDS[name], {**env, "HM_NAME": "app1"}) as app1,
        server(BACKENDS[name], {**env, "HM_NAME": "app2"}) as app2,
        strict_haproxy([app1.port, app2.port], tmp_path) as lb,
    ):
        _until_both(lb)
        stream = Stream(lb)
        stream.start()
        time.sleep(0.5)
        signalled = time.monotonic()
        os.kill(app1.process.pid, signal.SIGTERM)  # the master: as docker stop does
        app1.process.wait(DELAY + 15)
        stopped = time.monotonic()
        time.sleep(0.3)
        stream.done.set()
        stream.join(10)
        exit_code = app1.process.returncode
    errors = [what for _, what in stream.results if what.startswith("error")]
    assert errors == [], errors[:5]
    assert stopped - signalled >= DELAY - 0.2  # it kept serving for the delay
    last_app1 = max(t for t, what in stream.results if what == "app1")
    assert last_app1 - signalled < DELAY  # and the balancer had left it before it stopped
    assert exit_code is not None


def _until_ready(running: Server) -> None:
    deadline = time.monotonic() + 10  # the first round of checks
    while running.get("/health/ready").status != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_second_sigterm_stops_at_once(tmp_path: Path) -> None:
    env = {"HM_INTERVAL": "0.2", "HM_SHUTDOWN_DELAY": "30"}
    with server(uvicorn("tests.apps.flagged:asgi_app"), env) as running:
        _until_ready(running)
        os.kill(running.process.pid, signal.SIGTERM)
        time.sleep(1.2)  # past DUPLICATE: a second SIGTERM sooner is the same stop
        assert running.get("/health/ready").status == 503  # draining at once
        assert running.get("/health/live").status == 200
        assert running.get("/").status == 200  # still serving
        os.kill(running.process.pid, signal.SIGTERM)
        started = time.monotonic()
        running.process.wait(10)
        assert time.monotonic() - started < 5


def test_sigint_is_left_alone(tmp_path: Path) -> None:
    env = {"HM_INTERVAL": "0.2", "HM_SHUTDOWN_DELAY": "30"}
    with server(uvicorn("tests.apps.flagged:asgi_app"), env) as running:
        _until_ready(running)
        os.kill(running.process.pid, signal.SIGINT)
        running.process.wait(10)


@pytest.mark.parametrize("name", ["gunicorn-sync", "uvicorn-workers"])
def test_a_reload_puts_no_503_on_the_wire(name: str) -> None:
    """A reload (HUP: gunicorn, and uvicorn --workers, replace every worker) of a
    healthy server with shutdown_delay: each old worker stops alone, at once, and
    readiness answers 200 throughout (it used to drain each old worker for the whole
    delay while it still accepted on the shared socket: half the probes 503)."""
    env = {"HM_INTERVAL": "0.2", "HM_SHUTDOWN_DELAY": "3"}
    with server(BACKENDS[name], env) as running:
        deadline = time.monotonic() + 10  # both workers' first rounds
        while {running.get("/health/ready").status for _ in range(6)} != {200}:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        before = {running.get("/").body for _ in range(10)}
        os.kill(running.process.pid, signal.SIGHUP)
        statuses, after = [], set()
        until = time.monotonic() + 5  # past the old workers' delay
        while time.monotonic() < until:
            statuses.append(running.get("/health/ready").status)
            after.add(running.get("/").body)
            time.sleep(0.05)
        output = running.output()
    assert after - before, output  # the workers were replaced
    assert set(statuses) == {200}, (statuses.count(503), len(statuses))
    assert "stops alone" in output


def test_a_gunicorn_reload_never_leaves_the_instance_drained(tmp_path: Path) -> None:
    """HUP makes gunicorn start new workers and SIGTERM the old ones: the old ones
    drain themselves, the new ones serve; readiness never stays 503."""
    env = {"HM_INTERVAL": "0.2", "HM_SHUTDOWN_DELAY": "1"}
    with server(gunicorn("tests.apps.flagged:wsgi_app", "-w", "2"), env) as running:
        deadline = time.monotonic() + 10  # both workers' first rounds
        while {running.get("/health/ready").status for _ in range(6)} != {200}:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(running.process.pid, signal.SIGHUP)
        time.sleep(3.0)  # the old workers' delay has passed; they are gone
        assert {running.get("/health/ready").status for _ in range(20)} == {200}


@pytest.mark.parametrize(
    "args",
    [
        uvicorn("tests.apps.flagged:asgi_app"),
        ["hypercorn", "tests.apps.flagged:asgi_app", "--bind", "127.0.0.1:{port}", "-w", "0"],
        gunicorn("tests.apps.flagged:asgi_app", "-k", "asgi"),
        gunicorn("tests.apps.flagged:wsgi_app", "-k", "gthread", "--threads", "2"),
    ],
    ids=["uvicorn", "hypercorn-in-process", "gunicorn-asgi", "gunicorn-gthread"],
)
def test_sigterm_fails_readiness_keeps_serving_then_stops(args: list[str]) -> None:
    delay = 2.0
    env = {"HM_INTERVAL": "0.2", "HM_SHUTDOWN_DELAY": str(delay)}
    with server(args, env) as running:
        deadline = time.monotonic() + 10
        while running.get("/health/ready").status != 200:
            assert time.monotonic() < deadline
        os.kill(running.process.pid, signal.SIGTERM)
        signalled = time.monotonic()
        time.sleep(0.8)  # a worker of several decides after a moment (shutdown.SETTLE)
        during = [running.get(path).status for path in ("/health/ready", "/health/live", "/")]
        running.process.wait(delay + 15)
        stopped = time.monotonic() - signalled
    assert during == [503, 200, 200]  # drained, alive, still serving the app
    assert delay - 0.3 <= stopped < delay + 10, stopped


def test_a_binary_upgrade_puts_no_503_on_the_wire(tmp_path: Path) -> None:
    """gunicorn's USR2 starts a new master beside the old (re-executing its command:
    the console script here); TERM then stops the old one, which closes its
    listeners: its workers see the new server's holding the socket, and stop at once
    without draining a healthy service."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    script = Path(sys.executable).parent / "gunicorn"
    command = [str(script), "tests.apps.flagged:wsgi_app", "-b", f"127.0.0.1:{port}", "-w", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HM_INTERVAL": "0.2", "HM_SHUTDOWN_DELAY": "3"}
    with open(log, "wb") as output:
        old = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not _ready(port):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        os.kill(old.pid, signal.SIGUSR2)
        while log.read_text().count("Booting worker") < 4:  # the new master's workers
            assert time.monotonic() < deadline + 15, log.read_text()
            time.sleep(0.1)
        time.sleep(1.5)  # their first rounds
        os.kill(old.pid, signal.SIGTERM)  # retire the old master
        statuses = []
        until = time.monotonic() + 4  # past the old workers' delay
        while time.monotonic() < until:
            statuses.append(get(port, "/health/ready").status)
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(old.pid, signal.SIGKILL)  # the new master is in its group too
        old.wait(10)
    assert set(statuses) == {200}, (statuses.count(503), len(statuses))
    assert "stops alone" in log.read_text()


def _ready(port: int) -> bool:
    with contextlib.suppress(OSError):
        return get(port, "/health/ready").status == 200
    return False


@pytest.mark.parametrize("name", ["gunicorn-sync", "uvicorn-workers"])
def test_sigterm_to_the_process_group_still_drains(name: str) -> None:
    """systemd (KillMode=control-group) and dumb-init signal every process; the
    master then signals its workers again: one stop, drained, not a second SIGTERM."""
    delay = 2.5
    env = {"HM_INTERVAL": "0.2", "HM_SHUTDOWN_DELAY": str(delay)}
    with server(BACKENDS[name], env) as running:
        deadline = time.monotonic() + 10
        while {running.get("/health/ready").status for _ in range(6)} != {200}:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(running.process.pid, signal.SIGTERM)
        signalled = time.monotonic()
        time.sleep(1.0)
        during = [running.get(path).status for path in ("/health/ready", "/")]
        running.process.wait(delay + 15)
        stopped = time.monotonic() - signalled
    assert during == [503, 200]  # drained, still serving
    assert stopped >= delay - 0.5, stopped
