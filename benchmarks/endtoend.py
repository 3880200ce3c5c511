"""End to end on loopback: real servers, one worker each pinned to one core, loaded by
wrk (Debian's package) on another core with 16 connections; every health endpoint has
the same 2 ms dependency. The stacks: uvicorn with httptools and uvloop (the main ASGI
rows) and with h11 and asyncio, gunicorn's sync and gthread (the main WSGI rows) workers
and uvicorn's worker for it, hypercorn, granian (ASGI and WSGI)."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tests.support import Server, get, granian, gunicorn, server, uvicorn

CONNECTIONS = 16


def wrk_binary() -> str:
    """wrk from PATH, or installed from Debian's packages where we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "install", "-y", "-q", "wrk"],
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "wrk"],
        ):
            subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
            if shutil.which("wrk"):
                return str(shutil.which("wrk"))
    raise SystemExit("the end-to-end benchmark needs wrk: apt-get install wrk (Debian/Ubuntu)")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency(text: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def parse_wrk(text: str) -> tuple[float, float, float, int, int]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return (
        float(rps.group(1)) if rps else 0.0,
        _latency(text, "50"),
        _latency(text, "99"),
        sum(int(n) for n in errors.groups()) if errors else 0,
        int(non_2xx.group(1)) if non_2xx else 0,
    )


def _runs(running: Server) -> int:
    try:
        return int(running.get("/_runs").body)
    except (OSError, http.client.HTTPException, ValueError):
        return -1


def _ready(running: Server, path: str, bound: float) -> None:
    deadline = time.monotonic() + bound
    while True:
        try:
            if get(running.port, path, timeout=1).status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            return  # a hung peer never answers: measure it anyway
        time.sleep(0.05)


@dataclass(frozen=True)
class Stack:
    """A server as deployed: one worker, pinned to one core."""

    name: str
    kind: str  # "asgi" or "wsgi": which apps it serves
    args: Callable[[str], list[str]]  # the app's "module:attr" -> arguments for python -m
    main: bool = False  # the main rows of its kind (all peers, the hung dependency)


_QUIET = ("--no-access-log", "--log-level", "warning")
_GUNICORN = ("-w", "1", "--log-level", "warning")
_GRANIAN = ("--no-ws", "--log-level", "warning")
STACKS = [
    Stack(
        "uvicorn",
        "asgi",
        lambda app: uvicorn(app, "--http", "httptools", "--loop", "uvloop", *_QUIET),
        main=True,
    ),
    Stack(
        "uvicorn-h11",
        "asgi",
        lambda app: uvicorn(app, "--http", "h11", "--loop", "asyncio", *_QUIET),
    ),
    Stack(
        "gunicorn-gthread",
        "wsgi",
        lambda app: gunicorn(app, "-k", "gthread", "--threads", "4", *_GUNICORN),
        main=True,
    ),
    Stack("gunicorn-sync", "wsgi", lambda app: gunicorn(app, "-k", "sync", *_GUNICORN)),
    Stack(
        "gunicorn-uvicorn-worker",
        "asgi",
        lambda app: gunicorn(app, "-k", "uvicorn_worker.UvicornWorker", *_GUNICORN),
    ),
    Stack(
        "hypercorn",
        "asgi",
        lambda app: [
            "hypercorn",
            _built(app),
            "--bind",
            "127.0.0.1:{port}",
            "-w",
            "1",
            "-k",
            "uvloop",
        ],
    ),
    Stack("granian-asgi", "asgi", lambda app: granian("asgi", app, *_GRANIAN)),
    Stack("granian-wsgi", "wsgi", lambda app: granian("wsgi", app, *_GRANIAN)),
]
STACK = {stack.name: stack for stack in STACKS}


def _built(app: str) -> str:
    """``module:name`` as ``module:build('name')`` (see benchmarks.apps.build)."""
    module, _, name = app.partition(":")
    return f"{module}:build({name!r})" if module == "benchmarks.apps" else app


# Each app with its path and what it is; "bare" is the limit, "ours" the subject.
APPS = {
    "asgi": [
        ("bare", "bare_asgi", "/health/ready"),
        ("ours", "ours_asgi", "/health/ready"),
        ("peer", "fastapi_health", "/health"),
        ("peer", "fastapi_route", "/health"),
        ("peer", "starlette_route", "/health"),
    ],
    "wsgi": [
        ("bare", "bare_wsgi", "/health/ready"),
        ("ours", "ours_wsgi", "/health/ready"),
        ("peer", "flask_healthcheck", "/health"),
        ("peer", "django_health_check", "/health?format=json"),
    ],
}
# The peers on a stack that is not its kind's main one, by default (--all-peers: all).
SIDE_PEERS = {"asgi": ("fastapi_health",), "wsgi": ("flask_healthcheck",)}
HUNG_APPS = {"asgi": ("ours_asgi", "fastapi_health"), "wsgi": ("ours_wsgi", "flask_healthcheck")}


@dataclass(frozen=True)
class Scenario:
    stack: str
    role: str  # bare, ours or peer
    app: str
    path: str
    hung: bool = False

    @property
    def key(self) -> str:
        return f"e2e:{self.stack}:{self.app}{':hung' if self.hung else ''}"


def scenarios(all_peers: bool = False) -> list[Scenario]:
    """Every stack's rows: the bare app, ours, its peers; the hung dependency on the
    main stacks."""
    plan = []
    for stack in STACKS:
        for role, app, path in APPS[stack.kind]:
            if role != "peer" or stack.main or all_peers or app in SIDE_PEERS[stack.kind]:
                plan.append(Scenario(stack.name, role, app, path))
    for stack in STACKS:
        if stack.main:
            for role, app, path in APPS[stack.kind]:
                if app in HUNG_APPS[stack.kind]:
                    plan.append(Scenario(stack.name, role, app, path, hung=True))
    return plan


def cores() -> tuple[set[int], set[int]] | None:
    """One core for the server, another for wrk, so they do not fight over one."""
    cores = sorted(os.sched_getaffinity(0))
    return ({cores[0]}, {cores[1]}) if len(cores) >= 2 else None


@contextlib.contextmanager
def pinned(cores: set[int] | None) -> Iterator[None]:
    """Processes started inside inherit ``cores`` as their CPU affinity."""
    if cores is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def wrk_command(port: int, path: str, seconds: float, connections: int = CONNECTIONS) -> list[str]:
    return [
        wrk_binary(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "2s",
        f"http://127.0.0.1:{port}{path}",
    ]


@dataclass
class Load:
    scenario: Scenario
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors and timeouts
    non_2xx: int
    check_runs_per_s: float


@contextlib.contextmanager
def private_state() -> Iterator[dict[str, str]]:
    """The environment that keeps a server's instance database in a folder of its own,
    removed with the row (on the memory-backed /dev/shm, like the default location,
    where the last row's database would otherwise stay behind)."""
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # as the default
    with tempfile.TemporaryDirectory(prefix="bench-state-", dir=shm) as folder:
        yield {"HEALTH_MIDDLEWARE_STATE_DIR": folder}


def measure(scenario: Scenario, duration: float) -> Load:
    """One wrk run of ``scenario`` against a fresh server."""
    hung = scenario.hung
    args = STACK[scenario.stack].args(f"benchmarks.apps:{scenario.app}")
    server_cores, wrk_cores = cores() or (None, None)
    with contextlib.ExitStack() as stack:
        env = {"BENCH_HUNG": "1" if hung else "0", **stack.enter_context(private_state())}
        with pinned(server_cores):  # the server (and its workers) inherit the core
            running = stack.enter_context(server(args, env, ready="/_runs"))
        _ready(running, scenario.path, 3.0 if hung else 20.0)
        for _ in range(50):  # warm-up
            try:
                get(running.port, scenario.path, timeout=3 if not hung else 0.2)
            except (OSError, http.client.HTTPException):
                break
        before, started = _runs(running), time.monotonic()
        with pinned(wrk_cores):
            result = subprocess.run(
                wrk_command(running.port, scenario.path, duration),
                capture_output=True,
                text=True,
                timeout=duration + 60,
                check=False,
            )
        elapsed = time.monotonic() - started
        after = _runs(running)
    rps, p50, p99, errors, non_2xx = parse_wrk(result.stdout)
    runs = (after - before) / elapsed if before >= 0 and after >= 0 else float("nan")
    print(
        f"  {scenario.stack} {scenario.app}{' (hung)' if hung else ''}: "
        f"{rps:.0f} req/s, p99 {p99:.2f} ms"
        + ("" if rps or hung else f"\n{result.stdout}{result.stderr}{running.output()}"),
        file=sys.stderr,
        flush=True,
    )
    return Load(scenario, rps, p50, p99, errors, non_2xx, runs)
