"""One truth per server instance, through real multi-worker servers: the workers share
their checks (one run per interval for the whole instance), agree within a poll of a
result, share a drain, and a worker's death costs at most a check's timeout."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Server, gunicorn, server, uvicorn

pytestmark = pytest.mark.server

WORKERS = 4
SERVERS = {
    "gunicorn-sync": gunicorn("tests.apps.flagged:wsgi_app", "-w", str(WORKERS)),
    "gunicorn-gthread": gunicorn(
        "tests.apps.flagged:wsgi_app", "-w", str(WORKERS), "-k", "gthread", "--threads", "2"
    ),
    "gunicorn-uvicorn-worker": gunicorn(
        "tests.apps.flagged:asgi_app", "-w", str(WORKERS), "-k", "uvicorn_worker.UvicornWorker"
    ),
    "uvicorn-workers": uvicorn("tests.apps.flagged:asgi_app", "--workers", str(WORKERS)),
}


def runs_of(path: Path) -> list[tuple[int, float, str]]:
    """The check's runs as the app logged them: (pid, time, start|pass|fail)."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        pid, at, what = line.split()
        found.append((int(pid), float(at), what))
    return found


def warm(running: Server, seconds: float = 2.0) -> set[int]:
    """Probe on fresh connections until every worker has answered (each starts lazily
    on its first request under WSGI), and return the workers' pids."""
    pids: set[int] = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body = running.get("/").body.decode()
        pids.add(int(body.split(":")[1]))
        running.get("/health/ready")
        if len(pids) >= WORKERS and time.monotonic() > deadline - 20 + seconds:
            break
    return pids


@contextlib.contextmanager
def instance(name: str, tmp_path: Path, **env: str) -> Iterator[tuple[Server, Path, Path]]:
    flag, runs = tmp_path / "flag", tmp_path / "runs"
    full = {"HM_FLAG": str(flag), "HM_RUNS": str(runs), "HM_JITTER": "0", **env}
    with server(SERVERS[name], full) as running:
        yield running, flag, runs


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_a_check_runs_once_per_interval_for_the_whole_instance(name: str, tmp_path: Path) -> None:
    interval = 0.5
    with instance(name, tmp_path, HM_INTERVAL=str(interval), HM_TIMEOUT="0.5") as (
        running,
        _,
        runs,
    ):
        workers = warm(running)
        assert len(workers) == WORKERS, workers
        started = time.time()
        time.sleep(4.0)
        ended = time.time()
        window = [r for r in runs_of(runs) if r[2] == "start" and started <= r[1] < ended]
    expected = (ended - started) / interval  # 8: one instance, not one per worker (32)
    assert expected * 0.75 <= len(window) <= expected * 1.25 + 1, (len(window), window)
    assert running.process.pid not in {pid for pid, _, _ in window}  # never the master


@pytest.mark.parametrize("name", ["gunicorn-sync", "uvicorn-workers"])
def test_workers_agree_right_after_a_result_changes(name: str, tmp_path: Path) -> None:
    """A flipping dependency polled at 20/s on fresh connections (any worker): an
    answer disagrees with the instance's last result only in the moment it spreads."""
    with instance(name, tmp_path, HM_INTERVAL="1.0", HM_TIMEOUT="0.5") as (running, flag, runs):
        warm(running)
        polls: list[tuple[float, int]] = []
        flips = 0
        next_flip = time.monotonic() + 1.5
        deadline = time.monotonic() + 9.5
        while time.monotonic() < deadline:
            if time.monotonic() >= next_flip:
                flag.unlink() if flag.exists() else flag.touch()
                flips += 1
                next_flip += 3.0
            asked = time.time()
            polls.append((asked, running.get("/health/ready").status))
            time.sleep(0.05)
        results = [(at, what) for _, at, what in runs_of(runs) if what != "start"]

    def expected(at: float) -> int | None:
        """What the instance's newest result at ``at`` says; None right at a change
        (within 0.1 s of it), where either answer is right."""
        before = [what for finished, what in results if finished <= at - 0.1]
        near = [what for finished, what in results if at - 0.1 < finished <= at]
        if not before:
            return None
        if near and near[-1] != before[-1]:
            return None
        return 200 if before[-1] == "pass" else 503

    judged = [(at, status, expected(at)) for at, status in polls]
    wrong = [j for j in judged if j[2] is not None and j[1] != j[2]]
    assert flips >= 3
    assert len(wrong) <= 0.03 * len(judged), (len(wrong), len(judged), wrong[:10])


@pytest.mark.parametrize("name", ["gunicorn-sync", "gunicorn-gthread"])
def test_a_recycled_worker_answers_the_instance_state_at_once(name: str, tmp_path: Path) -> None:
    args = [*SERVERS[name], "--max-requests", "15"]
    flag, runs = tmp_path / "flag", tmp_path / "runs"
    flag.touch()  # the dependency is down: every answer must say so, none "starting"
    env = {"HM_FLAG": str(flag), "HM_RUNS": str(runs), "HM_INTERVAL": "0.5", "HM_JITTER": "0"}
    with server(args, env) as running:
        warm(running, 1.0)
        outputs = [running.get("/health").json().get("output", "") for _ in range(120)]
        assert re.search("request limit|Autorestarting", running.output())  # recycled
    starting = [o for o in outputs if o.startswith("starting")]
    assert starting == [], starting[:5]
    assert {o for o in outputs} == {"failing: flag:pid"}


def test_a_worker_killed_mid_check_costs_at_most_its_timeout(tmp_path: Path) -> None:
    timeout = 1.0
    env = {"HM_INTERVAL": "0.5", "HM_TIMEOUT": str(timeout), "HM_SLEEP": "3"}
    with instance("gunicorn-sync", tmp_path, **env) as (running, _, runs):
        warm(running, 0.5)
        deadline = time.monotonic() + 10
        while not runs_of(runs):
            assert time.monotonic() < deadline
            running.get("/health/ready")
            time.sleep(0.05)
        victim, started, _ = runs_of(runs)[0]
        os.kill(victim, signal.SIGKILL)
        killed = time.time()
        deadline = time.monotonic() + 10
        while True:
            others = [r for r in runs_of(runs) if r[0] != victim and r[2] == "start"]
            if others:
                break
            assert time.monotonic() < deadline, runs_of(runs)
            running.get("/health/ready")
            time.sleep(0.02)
    # Its lease ends one timeout after it began (plus a poll); another worker runs it.
    assert others[0][1] - started <= timeout + 0.5, (others[0][1] - started, killed - started)


def test_two_servers_on_one_host_stay_independent(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    with (
        instance("gunicorn-sync", one, HM_INTERVAL="0.3") as (first, first_flag, _),
        instance("gunicorn-sync", two, HM_INTERVAL="0.3") as (second, _, _),
    ):
        warm(first, 0.5)
        warm(second, 0.5)
        first_flag.touch()
        time.sleep(1.2)
        assert {first.get("/health/ready").status for _ in range(12)} == {503}
        assert {second.get("/health/ready").status for _ in range(12)} == {200}


def test_a_drain_reaches_every_worker_without_a_drain_file(tmp_path: Path) -> None:
    token = "k8s-prestop-token-0123456789"
    env = {"HM_INTERVAL": "0.3", "HM_TOKEN": token, "HM_PRESTOP_DELAY": "0.1"}
    with instance("gunicorn-gthread", tmp_path, **env) as (running, _, _):
        warm(running, 0.5)
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        connection.request("GET", "/health/prestop", headers={"Authorization": f"Bearer {token}"})
        assert connection.getresponse().status == 200
        connection.close()
        time.sleep(0.3)
        assert {running.get("/health/ready").status for _ in range(20)} == {503}
        assert {running.get("/health/live").status for _ in range(20)} == {200}
