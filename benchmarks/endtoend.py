"""End to end on loopback: real servers, one worker each, loaded by wrk (Debian's
package) with 16 connections; every health endpoint has the same 2 ms dependency."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tests.support import Server, get, gunicorn, server, uvicorn

CONNECTIONS = 16


@dataclass
class Load:
    server: str
    app: str
    path: str
    hung: bool
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors and timeouts
    non_2xx: int
    check_runs_per_s: float


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


def _ready(running: Server, path: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            if get(running.port, path, timeout=1).status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            return  # a hung peer never answers: measure it anyway
        time.sleep(0.05)


SERVERS = {
    "uvicorn": lambda app: uvicorn(
        f"benchmarks.apps:{app}", "--no-access-log", "--log-level", "warning"
    ),
    "gunicorn": lambda app: gunicorn(
        f"benchmarks.apps:{app}",
        "-k",
        "gthread",
        "-w",
        "1",
        "--threads",
        "4",
        "--log-level",
        "warning",
    ),
}


def _cores() -> tuple[set[int], set[int]] | None:
    """One core for the server, another for wrk, so they do not fight over one."""
    cores = sorted(os.sched_getaffinity(0))
    return ({cores[0]}, {cores[1]}) if len(cores) >= 2 else None


@contextlib.contextmanager
def _pinned(cores: set[int] | None) -> Iterator[None]:
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


def measure(server_name: str, app: str, path: str, duration: float, hung: bool = False) -> Load:
    wrk = wrk_binary()
    env = {"BENCH_HUNG": "1" if hung else "0"}
    server_cores, wrk_cores = _cores() or (None, None)
    with contextlib.ExitStack() as stack:
        with _pinned(server_cores):  # the server (and its workers) inherit the core
            running = stack.enter_context(server(SERVERS[server_name](app), env, ready="/_runs"))
        _ready(running, path)
        for _ in range(50):  # warm-up
            try:
                get(running.port, path, timeout=3 if not hung else 0.2)
            except (OSError, http.client.HTTPException):
                break
        before, started = _runs(running), time.monotonic()
        command = [
            wrk,
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "--timeout",
            "2s",
            f"http://127.0.0.1:{running.port}{path}",
        ]
        with _pinned(wrk_cores):
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=duration + 60, check=False
            )
        elapsed = time.monotonic() - started
        after = _runs(running)
    rps, p50, p99, errors, non_2xx = parse_wrk(result.stdout)
    runs = (after - before) / elapsed if before >= 0 and after >= 0 else float("nan")
    load = Load(server_name, app, path, hung, rps, p50, p99, errors, non_2xx, runs)
    print(
        f"  {server_name} {app}{' (hung)' if hung else ''}: {rps:.0f} req/s, p99 {p99:.2f} ms"
        + ("" if rps else f"\n{result.stdout}{result.stderr}{running.output()}"),
        file=sys.stderr,
        flush=True,
    )
    return load


SCENARIOS = [
    ("uvicorn", "bare_asgi", "/health"),
    ("uvicorn", "ours_asgi", "/health/ready"),
    ("uvicorn", "starlette_route", "/health"),
    ("uvicorn", "fastapi_route", "/health"),
    ("uvicorn", "fastapi_health", "/health"),
    ("gunicorn", "bare_wsgi", "/health"),
    ("gunicorn", "ours_wsgi", "/health/ready"),
    ("gunicorn", "flask_healthcheck", "/health"),
    ("gunicorn", "django_health_check", "/health?format=json"),
]
HUNG = [
    ("uvicorn", "ours_asgi", "/health/ready"),
    ("gunicorn", "ours_wsgi", "/health/ready"),
    ("uvicorn", "fastapi_health", "/health"),
    ("gunicorn", "flask_healthcheck", "/health"),
]


def run(duration: float = 5.0) -> list[Load]:
    loads = [measure(s, a, p, duration) for s, a, p in SCENARIOS]
    loads += [measure(s, a, p, duration, hung=True) for s, a, p in HUNG]
    return loads
