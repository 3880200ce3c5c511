"""Hardening: malformed requests, hostile checks, a hundred hung checks, secrets,
long runs and shutdowns under load."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import string
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from health_middleware import CheckResult, Health, HealthMiddleware, WSGIHealthMiddleware
from tests.support import (
    Server,
    call,
    call_without_waiting,
    gunicorn,
    poll,
    server,
    uvicorn,
)
from tests.support import threads as running_threads
from tests.test_asgi import plain_app
from tests.test_formats import FORMATS
from tests.test_wsgi import wsgi_app

# -- malformed requests through real servers ------------------------------------------------

TRICKS: dict[str, bytes] = {
    "percent-encoded slash": b"GET /health%2Fready HTTP/1.1\r\nHost: x\r\n\r\n",
    "percent-encoded letter": b"GET /%68ealth HTTP/1.1\r\nHost: x\r\n\r\n",
    "double-encoded": b"GET /health%252Fready HTTP/1.1\r\nHost: x\r\n\r\n",
    "dot segments": b"GET /health/../health/ready HTTP/1.1\r\nHost: x\r\n\r\n",
    "dot segments into health": b"GET /x/../health HTTP/1.1\r\nHost: x\r\n\r\n",
    "encoded NUL": b"GET /health%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "raw NUL": b"GET /health\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "encoded invalid UTF-8": b"GET /health%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n",
    "raw invalid UTF-8": b"GET /health\xff HTTP/1.1\r\nHost: x\r\n\r\n",
    "very long path": b"GET /health/" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "very long header": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n",
    "many headers": b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 500 + b"\r\n",
    "unknown method": b"BREW /health HTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute-form": b"GET http://example.com/health/ready HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "query string": b"GET /health/ready?x=/../live HTTP/1.1\r\nHost: x\r\n\r\n",
    "garbage line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 \xff\xfe\r\n\r\n",
    "no version": b"GET /health\r\n\r\n",
    "HTTP/1.0": b"GET /health/ready HTTP/1.0\r\n\r\n",
}


def raw(port: int, payload: bytes, responses: int = 1) -> list[tuple[int, dict[str, str], bytes]]:
    """Send raw bytes; read up to ``responses`` HTTP responses (bounded by time)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(payload)
        data = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            data += chunk
            if len(_parse(data)) >= responses:
                break
    return _parse(data)


def _parse(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    parsed = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        match = re.fullmatch(r"HTTP/1\.[01] (\d{3})( .*)?", lines[0])
        if not match:
            break
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
        }
        if headers.get("transfer-encoding") == "chunked":
            body, data, complete = _dechunk(rest)
            if not complete:
                break
            parsed.append((int(match.group(1)), headers, body))
            continue
        length = int(headers.get("content-length", "0") or 0)
        if len(rest) < length:
            break  # the body has not all arrived yet
        parsed.append((int(match.group(1)), headers, rest[:length]))
        data = rest[length:]
    return parsed


def _dechunk(data: bytes) -> tuple[bytes, bytes, bool]:
    """A chunked body: (body, what follows it, whether it is complete)."""
    body = b""
    while True:
        size_line, sep, rest = data.partition(b"\r\n")
        if not sep:
            return body, data, False
        size = int(size_line.split(b";")[0] or b"0", 16)
        if len(rest) < size + 2:
            return body, data, False
        body, data = body + rest[:size], rest[size + 2 :]
        if size == 0:
            return body, data, True


MALFORMED_SERVERS = {
    "uvicorn": uvicorn("tests.apps.flagged:asgi_app"),
    "gunicorn": gunicorn("tests.apps.flagged:wsgi_app", "-k", "gthread", "--threads", "2"),
}


@pytest.fixture(scope="module", params=sorted(MALFORMED_SERVERS))
def stable_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    # A long interval keeps every body stable, so answers compare byte for byte.
    with server(MALFORMED_SERVERS[request.param], {"HM_INTERVAL": "600"}) as running:
        deadline = time.monotonic() + 10
        while running.get("/health/ready").status != 200:
            assert time.monotonic() < deadline
        yield running


@pytest.mark.server
@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_malformed_requests_get_a_well_formed_answer(stable_server: Server, trick: str) -> None:
    running = stable_server
    plain = {
        (r.status, r.body)
        for p in ("/health", "/health/live", "/health/ready", "/health/started")
        for r in [running.get(p)]
    }
    answers = raw(running.port, TRICKS[trick])
    assert answers, f"{trick}: no HTTP answer at all\n{running.output()[-2000:]}"
    status, headers, body = answers[0]
    assert 200 <= status <= 599
    if headers.get("content-type") == "application/health+json":
        # Reached a health endpoint: only as the plain path itself would answer.
        assert (status, body) in plain, trick
    assert running.get("/health/live").status == 200, "the worker did not survive"
    assert running.process.poll() is None


@pytest.mark.server
def test_a_tls_hello_on_the_plain_port_leaves_the_worker_serving(stable_server: Server) -> None:
    # No line ending: a server rightly waits for the rest of a request line, or closes.
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) * 2
    for answer in raw(stable_server.port, hello):
        assert 400 <= answer[0] <= 599
    assert stable_server.get("/health/live").status == 200


@pytest.mark.server
def test_pipelined_requests_each_get_their_answer(stable_server: Server) -> None:
    payload = b"".join(
        f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        for p in ("/health/ready", "/", "/health/live", "/health")
    )
    answers = raw(stable_server.port, payload, responses=4)
    assert [a[0] for a in answers] == [200, 200, 200, 200]
    assert answers[0][2] == b'{"status":"pass"}'
    assert answers[1][1].get("content-type") != "application/health+json"  # the app's own
    assert b'"checks"' in answers[3][2]


# -- hostile checks ---------------------------------------------------------------------


class Hostile:
    def __str__(self) -> str:
        raise RuntimeError("__str__ raised")

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("__eq__ raised")

    __hash__ = None  # type: ignore[assignment]


class HostileError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ raised")


LEAK: list[bytes] = []


async def test_hostile_checks_are_reported_and_the_process_keeps_serving() -> None:
    health = Health(interval=0.02, timeout=0.5, expose_errors=True)
    health.add_check("str-raises", lambda: Hostile(), critical=False)  # noqa: PLW0108
    health.add_check(
        "exception-str-raises", lambda: (_ for _ in ()).throw(HostileError()), critical=False
    )
    health.add_check(
        "huge", lambda: CheckResult(observed_value=list(range(100000))), critical=False
    )
    health.add_check("unserialisable", lambda: CheckResult(observed_value={1, 2}), critical=False)
    health.add_check("leaks", lambda: LEAK.append(b"x" * 100000), critical=False)
    health.add_check("fine", lambda: True)
    app = HealthMiddleware(plain_app, health)
    first = await poll(app, "/health/started", lambda r: r.status == 200)
    assert first.status == 200
    await asyncio.sleep(0.2)  # many more runs
    checks = {k: v[0] for k, v in (await call(app, "/health")).json()["checks"].items()}
    await health.stop_async()
    LEAK.clear()
    assert "unsupported Hostile" in checks["str-raises"]["output"]
    assert "unrepresentable" in checks["str-raises"]["output"]
    assert checks["exception-str-raises"]["output"] == "HostileError: <message unavailable>"
    assert "larger than" in checks["huge"]["output"]
    assert "not JSON-serialisable" in checks["unserialisable"]["output"]
    assert checks["leaks"]["status"] == "pass"
    assert checks["fine"]["status"] == "pass"


# -- a hundred hung checks -------------------------------------------------------------------


async def test_a_hundred_hung_checks() -> None:
    release = threading.Event()
    runs = {"sync": 0, "async": 0}
    health = Health(interval=0.1, timeout=0.1, max_threads=8)

    def healthy_sync() -> None:
        runs["sync"] += 1

    async def healthy_async() -> None:
        runs["async"] += 1

    health.add_check("healthy-sync", healthy_sync)
    health.add_check("healthy-async", healthy_async)
    app = HealthMiddleware(plain_app, health)
    await poll(app, "/health", lambda r: r.status == 200)
    threads = running_threads()
    for i in range(100):
        health.add_check(f"hung-{i}", lambda: release.wait(60), critical=False)
    try:
        await asyncio.sleep(0.5)  # every hung check has had several intervals
        before = dict(runs)
        peak = 0
        for _ in range(40):  # 2 s: probes answer in one step all along
            for path in ("/health", "/health/ready", "/health/live"):
                call_without_waiting(app, path)
            peak = max(peak, running_threads())
            await asyncio.sleep(0.05)
        # The pool's bound: 8 threads for runs within their timeout, plus one for
        # each check hanging right now (a hung check never holds a second).
        assert peak <= threads + 8 + 100
        # The others kept their interval (0.1 s): about 20 runs in 2 s each.
        assert runs["sync"] - before["sync"] >= 12
        assert runs["async"] - before["async"] >= 12
        report = (await call(app, "/health")).json()
        assert report["checks"]["healthy-sync"][0]["status"] == "pass"
        outputs = {v[0]["output"] for k, v in report["checks"].items() if k.startswith("hung")}
        assert outputs <= {"timeout", "not started: no free check thread"}
        assert (await call(app, "/health/ready")).status == 200
    finally:
        release.set()
        await health.stop_async()


# -- secrets ------------------------------------------------------------------------------

TOKEN = "details-token-0123456789abcdef"


class Carrier:
    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __repr__(self) -> str:
        return f"Carrier({self.secret})"


# The marker keeps a generated secret from being a substring of the format's own words.
@given(
    st.text(string.ascii_letters + string.digits, min_size=8, max_size=40).map(
        lambda text: f"sekr3t-{text}"
    )
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_secrets_never_reach_an_endpoint(secret: str) -> None:
    health = Health(interval=60, details_token=TOKEN)

    def raises() -> None:
        raise ConnectionError(f"postgres://admin:{secret}@db")

    async def raises_async() -> None:
        raise ValueError(secret)

    health.add_check("raises", raises, critical=False)
    health.add_check("raises-async", raises_async, critical=False)
    health.add_check("garbage", lambda: Carrier(secret), critical=False)
    health.add_check(
        "bad-value", lambda: CheckResult(observed_value=Carrier(secret)), critical=False
    )
    for name in FORMATS:
        health.endpoint(f"/f/{name}", format=name)
    client = Client(WSGIHealthMiddleware(wsgi_app, health))
    try:
        deadline = time.monotonic() + 10
        while client.get("/health/started").status_code != 200:
            assert time.monotonic() < deadline
        paths = [*health.paths, *(p + "/" for p in health.paths)]
        for path in paths:
            for headers in (
                {},
                {"Authorization": "Bearer " + "x" * len(TOKEN)},
                {"Authorization": TOKEN},
            ):
                body = client.get(path, headers=headers).get_data()
                assert secret.encode() not in body, (path, headers)
        plain = client.get("/health").get_data()
        wrong = client.get("/health", headers={"Authorization": f"Bearer {TOKEN}x"}).get_data()
        assert wrong == plain  # a wrong token gets nothing more than none
        detailed = client.get("/health", headers={"Authorization": f"Bearer {TOKEN}"})
        assert secret.encode() in detailed.get_data()  # the token does open the details
    finally:
        health.stop()


# -- long run and shutdown ------------------------------------------------------------------


def _proc(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as file:
        status = dict(line.split(":", 1) for line in file.read().splitlines())
    return {
        "rss_kib": int(status["VmRSS"].split()[0]),
        "threads": int(status["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def _load(port: int, until: threading.Event, errors: list[str]) -> None:
    paths = ("/health", "/health/ready", "/health/live", "/")
    deadline = time.monotonic() + 900
    i = 0
    while not until.is_set() and time.monotonic() < deadline:
        try:
            from tests.support import get

            get(port, paths[i % len(paths)], timeout=5)
        except OSError as exc:
            errors.append(repr(exc))
        i += 1
        time.sleep(0.002)


SOAK_SECONDS = float(os.environ.get("HEALTH_MIDDLEWARE_SOAK_SECONDS", "30"))


@pytest.mark.server
@pytest.mark.slow
def test_a_long_run_under_probe_load_stays_flat() -> None:
    """A long run (HEALTH_MIDDLEWARE_SOAK_SECONDS, default 30) of probes while
    checks flap: memory, threads, file descriptors and tasks stay flat."""
    with server(uvicorn("tests.apps.churn:asgi_app"), {"HM_INTERVAL": "0.05"}) as running:
        stop_load = threading.Event()
        errors: list[str] = []
        load = threading.Thread(target=_load, args=(running.port, stop_load, errors))
        load.start()
        try:
            time.sleep(SOAK_SECONDS * 0.25)  # warmed up: caches, pools, the allocator
            start = _proc(running.process.pid)
            tasks_start = int(running.get("/_tasks").body)
            time.sleep(SOAK_SECONDS * 0.75)
            end = _proc(running.process.pid)
            tasks_end = int(running.get("/_tasks").body)
        finally:
            stop_load.set()
            load.join(30)
    assert errors == []
    # The check pool grows to the sync runs that overlap, never past them: the app has
    # two sync checks, so a second pool thread may join once they first overlap.
    assert end["threads"] - start["threads"] <= 1, (start, end)
    assert abs(end["fds"] - start["fds"]) <= 2, (start, end)
    assert abs(tasks_end - tasks_start) <= 3, (tasks_start, tasks_end)
    assert end["rss_kib"] - start["rss_kib"] < 4096, (start, end)
    output = running.output()
    for bad in (
        "Traceback",
        "Task exception was never retrieved",
        "Exception in ASGI",
        "was never awaited",
        "ERROR",
    ):
        assert bad not in output, output[-3000:]


@pytest.mark.server
@pytest.mark.parametrize("name", ["uvicorn", "gunicorn"])
def test_shutdown_under_load_with_checks_in_flight(name: str) -> None:
    args = (
        uvicorn("tests.apps.churn:asgi_app")
        if name == "uvicorn"
        else gunicorn(
            "tests.apps.churn:wsgi_app",
            "-k",
            "gthread",
            "--threads",
            "4",
            "--graceful-timeout",
            "10",
        )
    )
    env = {"HM_SLOW": "3", "HM_INTERVAL": "0.1"}  # checks still running at SIGTERM
    with server(args, env) as running:
        stop_load = threading.Event()
        errors: list[str] = []
        load = threading.Thread(target=_load, args=(running.port, stop_load, errors))
        load.start()
        time.sleep(1.0)
        started = time.monotonic()
        running.process.send_signal(signal.SIGTERM)
        code = running.process.wait(20)
        elapsed = time.monotonic() - started
        stop_load.set()
        load.join(30)
    # uvicorn re-raises SIGTERM once it has shut down gracefully: -15 is its clean exit.
    assert code in ((0, -signal.SIGTERM) if name == "uvicorn" else (0,)), running.output()
    assert "Finished server process" in running.output() or name == "gunicorn"
    assert elapsed < 15
    output = running.output()
    for bad in (
        "Traceback",
        "Task was destroyed but it is pending",
        "was never awaited",
        "Exception in",
    ):
        assert bad not in output, output[-3000:]
