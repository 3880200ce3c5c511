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


# -- the instance's database failing: never a frozen loop, never frozen results ---------


def _states(folder: Path) -> list[Path]:
    """The instance databases in ``folder``'s private state folder."""
    return sorted(folder.glob("health-middleware-*/*.sqlite3"))


@contextlib.contextmanager
def _flipping(tmp_path: Path, **env: str) -> Iterator[tuple[Server, Path, Path]]:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    full = {
        "HEALTH_MIDDLEWARE_STATE_DIR": str(state),
        "HM_INTERVAL": "0.3",
        "HM_STALE_AFTER": "2",
        **env,
    }
    with instance("uvicorn-workers", tmp_path, **full) as (running, flag, _):
        warm(running, 0.5)
        yield running, flag, state


def _still_checking(running: Server, flag: Path) -> None:
    """The checks still run: a failing dependency is seen, liveness holds."""
    flag.touch()
    deadline = time.monotonic() + 8
    while {running.get("/health/ready").status for _ in range(8)} != {503}:
        assert time.monotonic() < deadline, "the failing dependency was never seen"
        time.sleep(0.1)
    assert {running.get("/health/live").status for _ in range(8)} == {200}


def test_a_database_held_by_a_stopped_writer_never_freezes_the_app(tmp_path: Path) -> None:
    import sqlite3

    with _flipping(tmp_path) as (running, flag, state):
        (database,) = _states(state)
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # a worker stopped in the middle of a write
        try:
            slowest = 0.0
            for _ in range(20):
                started = time.monotonic()
                assert running.get("/").status == 200
                slowest = max(slowest, time.monotonic() - started)
                time.sleep(0.1)
            assert slowest < 0.5, slowest  # the app's own routes never wait on it
            _still_checking(running, flag)  # and past its limit, workers run alone
        finally:
            holder.rollback()
            holder.close()
        output = running.output()
    assert output.count("database is locked") < 50  # backed off, not a flood


def test_a_corrupt_database_makes_the_workers_run_alone(tmp_path: Path) -> None:
    with _flipping(tmp_path) as (running, flag, state):
        for path in state.glob("health-middleware-*/*"):  # the private state folder's
            path.write_bytes(os.urandom(8192))
        time.sleep(2.5)  # past stale_after: still published
        assert {running.get("/health/live").status for _ in range(8)} == {200}
        _still_checking(running, flag)
        assert running.output().count("runs its checks alone") <= WORKERS  # once per worker


def test_a_full_state_directory_makes_the_workers_run_alone(tmp_path: Path) -> None:
    import subprocess

    state = tmp_path / "state"
    state.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(state)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        with _flipping(tmp_path, HM_INTERVAL="0.05") as (running, flag, _):
            time.sleep(1.0)  # the write-ahead log fills the 48 KiB
            _still_checking(running, flag)
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def test_the_wall_clock_set_back_does_not_stop_the_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from health_middleware.engine.schedule import Schedule
    from health_middleware.instance.database import SharedState
    from health_middleware.model.check import Check

    check = Check.build("db", lambda: None, {}, interval=0.05, timeout=0.05)
    databases = [SharedState(str(tmp_path / "db.sqlite3")) for _ in "ab"]
    schedules = [Schedule(lambda db=db: db, jitter=False) for db in databases]  # type: ignore[misc]
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600)  # NTP steps the clock back
    runs = 0
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        for schedule in schedules:
            if schedule.take(check, time.monotonic())[0]:
                runs += 1
                assert schedule.shared is not None
                schedule.shared.finish("db", b"{}")
        time.sleep(0.005)
    assert 15 <= runs <= 25, runs  # one run per 0.05 s for the pair, as ever


def test_servers_in_separate_pid_namespaces_never_share_or_remove(tmp_path: Path) -> None:
    """Two containers of one pod share /dev/shm, each with its own pid 1: neither may
    read or delete the other's database."""
    import shutil
    import subprocess

    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare or "unshare", "-pf", "--mount-proc", "true"], check=False)
    if unshare is None or probe.returncode != 0:
        pytest.skip("cannot create pid namespaces here (unshare -pf)")
    state = tmp_path / "state"
    state.mkdir()
    prefix = (unshare, "-pf", "--mount-proc")
    env = {"HEALTH_MIDDLEWARE_STATE_DIR": str(state), "HM_INTERVAL": "0.5", "HM_JITTER": "0"}
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    args = gunicorn("tests.apps.flagged:wsgi_app", "-w", "2")
    runs = one / "runs"
    with server(args, {**env, "HM_RUNS": str(runs)}, prefix=prefix) as first:
        warm(first, 0.5)
        before = set(_states(state))
        with server(args, {**env, "HM_RUNS": str(two / "runs")}, prefix=prefix) as second:
            warm(second, 0.5)
            assert before <= set(_states(state))  # the first's database was kept
            assert len(_states(state)) == 2  # and each has its own
            started = time.time()
            time.sleep(3.0)
            window = [r for r in runs_of(runs) if r[2] == "start" and r[1] >= started]
    assert 4 <= len(window) <= 8, window  # one instance's pace: 6 in 3 s
