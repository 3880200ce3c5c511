"""Real uvicorn and gunicorn, started on 127.0.0.1: outcome changes reach every
worker within one interval plus timeout, and checks run in workers, never the master."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Server, gunicorn, server, uvicorn

pytestmark = pytest.mark.server

INTERVAL, TIMEOUT = 0.5, 0.5
# Scheduling slack on a shared 2-core machine; the property is interval + timeout.
SLACK = 0.75

SERVERS = {
    "uvicorn-lifespan-on": uvicorn("tests.apps.flagged:asgi_app", "--lifespan", "on"),
    "uvicorn-lifespan-off": uvicorn("tests.apps.flagged:asgi_app", "--lifespan", "off"),
    "gunicorn-sync-preload": gunicorn(
        "tests.apps.flagged:wsgi_app", *["-w", "2", "--preload", "-k", "sync"]
    ),
    "gunicorn-gthread-preload": gunicorn(
        "tests.apps.flagged:wsgi_app", *["-w", "2", "--preload", "-k", "gthread", "--threads", "4"]
    ),
}


@pytest.fixture(params=sorted(SERVERS))
def flagged(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, Path, Path]]:
    flag, runs = tmp_path / "flag", tmp_path / "runs"
    args = SERVERS[request.param]
    env = {
        "HM_FLAG": str(flag),
        "HM_RUNS": str(runs),
        "HM_INTERVAL": str(INTERVAL),
        "HM_TIMEOUT": str(TIMEOUT),
    }
    with server(args, env) as running:
        yield running, flag, runs


def _sample(running: Server, n: int) -> list[tuple[int, int]]:
    """``n`` full reports on fresh connections: (HTTP status, pid of the worker)."""
    seen = []
    for _ in range(n):
        response = running.get("/health")
        entry = response.json()["checks"].get("flag:pid")
        seen.append((response.status, entry[0]["observedValue"] if entry else 0))
    return seen


def _workers(running: Server) -> int:
    return 2 if "gunicorn" in " ".join(running.process.args) else 1  # type: ignore[arg-type]


def test_outcome_change_reaches_every_worker(flagged: tuple[Server, Path, Path]) -> None:
    running, flag, runs = flagged
    workers = _workers(running)
    # Warm up: every worker has answered a passing report (each starts lazily or on lifespan).
    deadline = time.monotonic() + 20
    passing: set[int] = set()
    while len(passing) < workers:
        assert time.monotonic() < deadline, f"workers seen passing: {passing}"
        passing |= {pid for status, pid in _sample(running, 4) if status == 200 and pid}
        time.sleep(0.05)

    serving = {int(running.get("/").body.split(b":")[1]) for _ in range(30)}
    assert len(serving) == workers, serving
    for present, expected in ((True, 503), (False, 200)):
        flag.touch() if present else flag.unlink()
        time.sleep(INTERVAL + TIMEOUT + SLACK)
        answers = _sample(running, 30)
        assert {status for status, _ in answers} == {expected}, answers
        # Every worker answers with the instance's result, run by one of them.
        assert {pid for _, pid in answers} <= serving, answers

    ran_in = {int(line.split()[0]) for line in runs.read_text().splitlines()}
    assert ran_in <= serving
    if workers > 1:  # uvicorn without --workers serves in its one process
        assert running.process.pid not in ran_in, "a check ran in the master process"
    assert running.get("/").body.startswith(b"app:")


@pytest.mark.parametrize(
    ("app", "worker"),
    [
        ("tests.apps.flagged:wsgi_app", "sync"),
        ("tests.apps.wrapped:app", "sync"),
        ("tests.apps.wrapped:asgi", "uvicorn_worker.UvicornWorker"),
    ],
    ids=["wsgi-middleware", "flask-wsgi-app", "wsgi-health-in-an-asgi-adapter"],
)
def test_the_hook_starts_an_app_wrapped_in_code_as_each_worker_boots(
    tmp_path: Path, app: str, worker: str
) -> None:
    """Under ``--preload`` the middleware is made in the master, where nothing starts:
    the hook starts each worker's refresher at boot, before any health request, so the
    first probe finds the checks run (it used to wait for that first request), also
    for a WSGI Health inside the app (Flask's ``wsgi_app``, an ASGI adapter)."""
    runs = tmp_path / "runs"
    args = gunicorn(
        app, *["-c", "python:health_middleware.gunicorn", "-w", "2", "--preload", "-k", worker]
    )
    env = {"HM_RUNS": str(runs), "HM_INTERVAL": str(INTERVAL), "HM_TIMEOUT": str(TIMEOUT)}
    with server(args, env, ready="/") as running:  # the app's own path: no health request
        deadline = time.monotonic() + 10
        while not (runs.exists() and runs.read_text()):
            assert time.monotonic() < deadline, f"no check ran: {running.output()[-2000:]}"
            time.sleep(0.1)
        assert running.get("/health/ready").status == (200 if "flagged" in app else 503)
