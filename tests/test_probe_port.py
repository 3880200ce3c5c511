"""The probe port (``Health.listen``, ``HEALTH_MIDDLEWARE_LISTEN``): every health path
on a port of its own, answered by a thread of its own from the same snapshot.

Through real servers saturated by the app's own requests (gunicorn sync workers held
by 2 s requests, gthread's threads held the same way, uvicorn's loop kept busy by
CPU-bound requests) probes on the probe port stay fast, beside the same probes on the
main port (whose figures are printed, never asserted); a blocked event loop fails
liveness there within ``stale_after``; malformed requests, a slow-loris client and a
flood leave it serving with as many threads and descriptors as before.

``measure_probes`` is the measuring helper, for benchmarks too: probe latency under
saturation, with and without the port.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from werkzeug.test import Client

from health_middleware import Health, WSGIHealthMiddleware
from health_middleware.config.environment import LISTEN as LISTEN_VARIABLE
from health_middleware.config.environment import listen_address
from health_middleware.process.listener import MAX_HEAD, ListenError
from health_middleware.serve import health_from_environment
from tests.support import (
    Server,
    free_port,
    get,
    gunicorn,
    lifespan_startup,
    run_to_exit,
    server,
    uvicorn,
)
from tests.test_hardening import TRICKS, raw

# -- the measuring helper ------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    status: int  # 0: no answer within the timeout (or the connection failed)
    ms: float  # from connecting to the whole answer read


def probe(port: int, path: str = "/health/live", timeout: float = 5.0) -> Probe:
    """One probe as the kubelet makes it: a new connection, a GET with ``Connection:
    close`` (its HTTP client keeps no connections), the answer read."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        response.read()
        status = response.status
    except (OSError, http.client.HTTPException):
        status = 0
    finally:
        connection.close()
    return Probe(status, (time.perf_counter() - started) * 1000)


def measure_probes(
    port: int, seconds: float, every: float, path: str = "/health/live", timeout: float = 5.0
) -> list[Probe]:
    """Probes of ``port`` started every ``every`` seconds (or as soon as the previous
    one ends, if later) for ``seconds``."""
    probes: list[Probe] = []
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        probes.append(probe(port, path, timeout))
        next_at += every
        time.sleep(max(0.0, next_at - time.monotonic()))
    return probes


@dataclass(frozen=True)
class Figures:
    count: int
    p50: float
    p99: float
    max: float
    failed: int  # not 200

    def __str__(self) -> str:
        return (
            f"n={self.count} p50={self.p50:.1f} ms p99={self.p99:.1f} ms "
            f"max={self.max:.1f} ms not-200={self.failed}"
        )


def figures(probes: list[Probe]) -> Figures:
    times = sorted(p.ms for p in probes)
    if not times:
        return Figures(0, math.nan, math.nan, math.nan, 0)

    def rank(q: float) -> float:
        return times[min(len(times) - 1, math.ceil(q * len(times)) - 1)]

    return Figures(
        len(times), rank(0.5), rank(0.99), times[-1], sum(p.status != 200 for p in probes)
    )


class Load:
    """``clients`` threads each requesting ``path`` of the main port, one after another."""

    def __init__(self, port: int, path: str, clients: int) -> None:
        self.port, self.path = port, path
        self.done = threading.Event()
        self.requests = 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        while not self.done.is_set():
            with contextlib.suppress(OSError, http.client.HTTPException):
                get(self.port, self.path, timeout=30)
                self.requests += 1

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()


def beside(probe_port: int, main_port: int, seconds: float) -> tuple[list[Probe], list[Probe]]:
    """Probes of the probe port (every 40 ms) and of the main port (every 0.5 s, each
    waiting up to 5 s as the issue's measurements did), at the same time."""
    main: list[Probe] = []
    thread = threading.Thread(
        target=lambda: main.extend(measure_probes(main_port, seconds, 0.5)), daemon=True
    )
    thread.start()
    side = measure_probes(probe_port, seconds, 0.04)
    thread.join(15)
    return side, main


# -- the option ----------------------------------------------------------------------------


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@contextlib.contextmanager
def listening(health: Health, port: int) -> Iterator[None]:
    health.listen(port, "127.0.0.1")
    health.runtime.start_in_thread()
    try:
        yield
    finally:
        health.stop()


def test_listen_only_records_the_wish_and_refuses_a_second() -> None:
    port = free_port()
    health = Health()
    health.listen(port, "127.0.0.1")
    assert health.listen_address == ("127.0.0.1", port)
    assert health.listening is None  # nothing starts before the runtime
    assert refused(port)
    with pytest.raises(ValueError, match=f"already set to 127.0.0.1:{port}"):
        health.listen(port + 1 if port < 65535 else 1, "127.0.0.1")
    with pytest.raises(TypeError, match="port"):
        Health().listen("8081")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="port"):
        Health().listen(70000)
    with pytest.raises(ValueError, match="host"):
        Health().listen(8081, "")


def test_the_port_opens_with_the_runtime_and_closes_with_stop() -> None:
    port = free_port()
    health = Health(interval=0.2)
    with listening(health, port):
        assert health.listening == ("127.0.0.1", port)
        assert threading.active_count() >= 2
        assert any(t.name == "health-probe-port" for t in threading.enumerate())
        assert get(port, "/health/live").status == 200
        assert get(port, "/health/live", method="POST").status == 405
        assert get(port, "/health/live", method="HEAD").body == b""
        assert get(port, "/elsewhere").status == 404
    assert health.runtime.listener is None
    assert refused(port)
    assert not any(t.name == "health-probe-port" for t in threading.enumerate())


def test_listen_on_a_running_runtime_opens_at_once() -> None:
    port = free_port()
    health = Health()
    health.runtime.start_in_thread()
    try:
        health.listen(port, "127.0.0.1")
        assert get(port, "/health/live").status == 200
    finally:
        health.stop()


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    """A port some other socket listens on (without ``SO_REUSEPORT``)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_port_already_taken_stops_the_start_naming_it() -> None:
    with taken_port() as port:
        health = Health()
        health.listen(port, "127.0.0.1")
        with pytest.raises(ListenError, match=f"127.0.0.1:{port}"):
            health.runtime.start_in_thread()
        assert health.runtime.running is None  # no refresher either: nothing half-started


def test_asgi_lifespan_startup_fails_naming_the_taken_port() -> None:
    with taken_port() as port:
        health = Health()
        health.listen(port, "127.0.0.1")
        sent = lifespan_startup(health)
        assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
        assert f"127.0.0.1:{port}" in sent[0]["message"]


def test_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert listen_address("127.0.0.1:8081") == ("127.0.0.1", 8081)
    assert listen_address("8081") == ("0.0.0.0", 8081)
    assert listen_address("[::1]:8081") == ("::1", 8081)
    for wrong in ("x", "host:", ":8081", "1.2.3.4:99999", "h:0"):
        with pytest.raises(ValueError, match=LISTEN_VARIABLE):
            listen_address(wrong)
    # The runtime takes it as it starts (tests/test_refusals.py): the one-liners'
    # factories leave it alone.
    monkeypatch.setenv(LISTEN_VARIABLE, "127.0.0.1:8081")
    monkeypatch.setenv("HEALTH_MIDDLEWARE_HEALTH", "tests.apps.busy:health")
    assert health_from_environment().listen_address is None


def test_pre_stop_answers_on_the_probe_port_through_the_same_decision() -> None:
    port = free_port()
    health = Health(interval=0.2)
    health.prestop("a-long-enough-probe-port-token", delay=0.2)
    with listening(health, port):
        assert get(port, "/health/prestop").status == 401
        assert get(port, "/health/prestop", method="PUT").status == 405
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        started = time.monotonic()
        connection.request(
            "POST",
            "/health/prestop",
            headers={"Authorization": "Bearer a-long-enough-probe-port-token"},
        )
        assert connection.getresponse().status == 200
        assert time.monotonic() - started >= 0.2
        connection.close()
        assert health.draining
        assert get(port, "/health/ready").status == 503
        assert get(port, "/health/live").status == 200


def test_keep_alive_pipelining_and_the_head_cap() -> None:
    port = free_port()
    health = Health(interval=0.2)
    with listening(health, port):
        payload = b"".join(
            f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            for p in ("/health/live", "/nope", "/health/live", "/health")
        )
        assert [a[0] for a in raw(port, payload, responses=4)] == [200, 404, 200, 200]
        big = b"GET /health/live HTTP/1.1\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n"
        assert [a[0] for a in raw(port, big)] == [431]
        assert [a[0] for a in raw(port, b"GET /health/live HTTP/1.0\r\n\r\n")] == [200]
        assert get(port, "/health/live").status == 200


HOST_RULES = {  # RFC 9112: section 3.2 (Host), section 5.1 (no space before the colon)
    b"GET /health/live HTTP/1.1\r\n\r\n": 400,  # HTTP/1.1 without Host
    b"GET /health/live HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n": 400,
    b"GET /health/live HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n": 400,  # names ignore case
    b"GET /health/live HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n": 400,
    b"GET /health/live HTTP/1.1\r\nHost : x\r\n\r\n": 400,
    b"GET /health/live HTTP/1.1\r\nHost: x\r\nAccept\t: */*\r\n\r\n": 400,
    b"GET /health/live HTTP/1.0\r\nUser-Agent : probe\r\n\r\n": 400,
    b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n": 200,
    b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Note: a : b\r\n\r\n": 200,  # in a value
    b"GET /health/live HTTP/1.0\r\n\r\n": 200,  # HTTP/1.0 may go without
    # A Host that names no host (RFC 9110 section 7.2), a field name that is no token
    # and a control character in a value (RFC 9110 section 5.5), a length of no ASCII
    # digits (RFC 9110 section 8.6): 400.
    b"GET /health/live HTTP/1.1\r\nHost: a b\r\n\r\n": 400,
    b"GET /health/live HTTP/1.1\r\nHost: a\x00b\r\n\r\n": 400,
    b"GET /health/live HTTP/1.1\r\nHost: a/b@c\r\n\r\n": 400,
    b"GET /health/live HTTP/1.1\r\nHost: a:xyz\r\n\r\n": 400,
    b"GET /health/live HTTP/1.1\r\nHost: x\r\nX Note: a\r\n\r\n": 400,
    b"GET /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: \xc2\xb2\r\n\r\n": 400,
    b"GET /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: +0\r\n\r\n": 400,
    b"GET /health/live HTTP/1.1\r\nHost: [::1]:8081\r\n\r\n": 200,
    b"GET /health/live HTTP/1.1\r\nHost: example.com:8081\r\n\r\n": 200,
}


def test_the_host_header_rules_of_rfc_9112() -> None:
    port = free_port()
    health = Health(interval=0.2)
    with listening(health, port):
        answers = {request: [a[0] for a in raw(port, request)] for request in HOST_RULES}
        assert answers == {request: [status] for request, status in HOST_RULES.items()}
        assert get(port, "/health/live").status == 200


def test_a_forked_child_forgets_the_parents_port() -> None:
    port = free_port()
    health = Health(interval=0.2)
    with listening(health, port):
        pid = os.fork()
        if pid == 0:  # the child: no listener of its own until its runtime starts
            code = 0 if health.listening is None and health.runtime.listener is None else 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert get(port, "/health/live").status == 200  # the parent still serves


# -- real servers under load ---------------------------------------------------------------

SECONDS = 8.0  # of probing under each load


def busy_env(probe_port: int, **more: str) -> dict[str, str]:
    return {
        LISTEN_VARIABLE: f"127.0.0.1:{probe_port}",
        "HEALTH_MIDDLEWARE_HEALTH": "tests.apps.busy:health",
        **more,
    }


def listeners(port: int) -> int:
    """How many sockets listen on ``port`` on this host (Linux /proc/net/tcp)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                count += fields[1].endswith(f":{port:04X}") and fields[3] == "0A"
    return count


LOADS: dict[str, tuple[list[str], str, int]] = {
    # gunicorn -w 2 sync, the hook starting each worker at boot (--preload: the master
    # runs no runtime); four clients keep both workers held by 2 s requests.
    "gunicorn sync -w 2, 2 s requests": (
        gunicorn(
            "tests.apps.busy:inner_wsgi",
            "-c",
            "python:health_middleware.gunicorn",
            "-w",
            "2",
            "--preload",
        ),
        "/sleep/2",
        4,
    ),
    # gthread with 2 threads, the call syntax (the port opens with the first health
    # request, the server helper's readiness probe); four clients, 2 s requests.
    "gunicorn gthread --threads 2, 2 s requests": (
        gunicorn(
            'health_middleware.serve:wsgi("tests.apps.busy:inner_wsgi")',
            "-k",
            "gthread",
            "--threads",
            "2",
        ),
        "/sleep/2",
        4,
    ),
    # uvicorn, one worker, HM_LISTEN (health.listen in the app); eight clients each
    # costing 200 ms of CPU on the loop.
    "uvicorn, 8 clients of 200 ms CPU": (uvicorn("tests.apps.busy:asgi_app"), "/cpu/0.2", 8),
}


@pytest.mark.server
@pytest.mark.parametrize("load", list(LOADS))
def test_probes_on_the_probe_port_stay_fast_under_load(load: str) -> None:
    args, path, clients = LOADS[load]
    probe_port = free_port()
    env = busy_env(probe_port, HM_LISTEN=f"127.0.0.1:{probe_port}")
    if "uvicorn" not in load:
        del env["HM_LISTEN"]
    else:
        del env[LISTEN_VARIABLE]
    with server(args, env) as running:
        assert probe(probe_port).status == 200, running.output()[-3000:]
        if "-w 2" in load:
            deadline = time.monotonic() + 10  # the second worker may still be booting
            while listeners(probe_port) != 2:  # each worker listens (SO_REUSEPORT)
                assert time.monotonic() < deadline, listeners(probe_port)
                time.sleep(0.05)
        with Load(running.port, path, clients) as busy:
            time.sleep(1.5)  # every worker or the loop is busy by now
            side, main = beside(probe_port, running.port, SECONDS)
        on_port, on_main = figures(side), figures(main)
        print(f"\n{load}: probe port {on_port}; main port {on_main}; {busy.requests} app requests")
        assert busy.requests > 0
        assert on_port.failed == 0, side
        assert on_port.p99 < 50, f"{load}: probe port {on_port}"
        assert on_port.max < 250, f"{load}: probe port {on_port}"
    assert refused(probe_port)  # the port went with the server


@pytest.mark.server
def test_a_blocked_event_loop_fails_liveness_on_the_probe_port() -> None:
    probe_port, stale_after = free_port(), 2.0
    env = {"HM_LISTEN": f"127.0.0.1:{probe_port}", "HM_STALE_AFTER": str(stale_after)}
    with server(uvicorn("tests.apps.busy:asgi_app"), env) as running:
        assert probe(probe_port).status == 200
        started = time.monotonic()
        blocker = threading.Thread(
            target=lambda: get(running.port, f"/block/{stale_after + 2}", timeout=30),
            daemon=True,
        )
        blocker.start()
        while (answer := probe(probe_port, timeout=1)).status != 503:
            assert answer.status == 200
            assert time.monotonic() - started < stale_after + 1, "liveness never failed"
            time.sleep(0.05)
        failed_after = time.monotonic() - started
        print(f"\nliveness failed on the probe port {failed_after:.2f} s into the block")
        assert failed_after < stale_after + 1
        blocker.join(30)
        deadline = time.monotonic() + 5
        while probe(probe_port).status != 200:  # the loop is back: so is liveness
            assert time.monotonic() < deadline
            time.sleep(0.05)


@pytest.fixture(scope="module")
def probe_server() -> Iterator[tuple[Server, int]]:
    probe_port = free_port()
    with server(uvicorn("tests.apps.busy:asgi_app"), {"HM_LISTEN": f"127.0.0.1:{probe_port}"}) as s:
        deadline = time.monotonic() + 10
        while get(probe_port, "/health/ready").status != 200:
            assert time.monotonic() < deadline
        yield s, probe_port


@pytest.mark.server
def test_malformed_requests_and_a_slow_loris_leave_the_probe_port_serving(
    probe_server: tuple[Server, int],
) -> None:
    running, port = probe_server
    plain = {
        (r.status, r.body)
        for p in ("/health/live", "/health/ready", "/health/started")
        for r in [get(port, p)]
    }
    for trick, payload in sorted(TRICKS.items()):
        answers = raw(port, payload)
        assert answers, f"{trick}: no HTTP answer at all"
        status, headers, body = answers[0]
        assert 200 <= status <= 599, trick
        if headers.get("content-type") == "application/health+json" and b"checks" not in body:
            assert (status, body) in plain, trick
        assert get(port, "/health/live").status == 200, trick

    loris: list[socket.socket] = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        loris.append(sock)
    request = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    stop_dripping = threading.Event()

    def drip() -> None:
        for byte in range(len(request)):
            for sock in loris:
                with contextlib.suppress(OSError):
                    sock.send(request[byte : byte + 1])
            if stop_dripping.wait(1.0):
                return

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        probes = measure_probes(port, 7.0, 0.05)
    finally:
        stop_dripping.set()
        dripper.join(5)
        for sock in loris:
            sock.close()
    seen = figures(probes)
    print(f"\nprobe port beside 50 slow-loris connections: {seen}")
    assert seen.failed == 0, seen
    assert seen.max < 250, seen
    assert running.process.poll() is None
    output = running.output()
    assert "Traceback" not in output, output[-3000:]
    assert "probe port failed" not in output, output[-3000:]


FLOOD_SECONDS = float(os.environ.get("HEALTH_MIDDLEWARE_FLOOD_SECONDS", "20"))


def _resources(pid: int) -> tuple[int, int]:
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.server
@pytest.mark.slow
def test_threads_and_descriptors_stay_flat_through_a_probe_flood(
    probe_server: tuple[Server, int],
) -> None:
    running, port = probe_server
    pid = running.process.pid  # uvicorn without --workers: the serving process itself
    measure_probes(port, 1.0, 0.0)
    time.sleep(0.5)
    threads, fds = _resources(pid)
    deadline = time.monotonic() + FLOOD_SECONDS
    counts = [0, 0, 0]

    def flood(kind: int) -> None:
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if kind == 0:  # a new connection a probe
                    get(port, "/health/live", timeout=5)
                elif kind == 1:  # keep-alive: a hundred probes a connection
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    for _ in range(100):
                        connection.request("GET", "/health")
                        connection.getresponse().read()
                    connection.close()
                else:  # a garbage request, a half-sent one, an abandoned connection
                    raw(port, b"\x16\x03\x01 junk\r\n\r\n")
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                        sock.sendall(b"GET /health/live HTTP/1.1\r\n")
                counts[kind] += 1

    workers = [threading.Thread(target=flood, args=(k % 3,), daemon=True) for k in range(6)]
    for worker in workers:
        worker.start()
    peak = (threads, fds)
    while any(w.is_alive() for w in workers):
        now = _resources(pid)
        peak = (max(peak[0], now[0]), max(peak[1], now[1]))
        time.sleep(0.5)
    settle = time.monotonic() + 8  # the listener's read timeout, and then some
    while _resources(pid)[1] > fds + 2 and time.monotonic() < settle:
        time.sleep(0.2)
    after = _resources(pid)
    print(
        f"\nflood of {FLOOD_SECONDS:g} s ({counts} rounds): threads {threads} -> {after[0]} "
        f"(peak {peak[0]}), descriptors {fds} -> {after[1]} (peak {peak[1]})"
    )
    assert peak[0] == threads == after[0]  # a fixed number of threads, always
    assert after[1] <= fds + 2
    assert get(port, "/health/live").status == 200


@pytest.mark.server
def test_gunicorn_stops_at_boot_when_the_port_is_taken() -> None:
    with taken_port() as probe_port:
        args = gunicorn("tests.apps.busy:inner_wsgi", "-c", "python:health_middleware.gunicorn")
        args = [a.replace("{port}", str(free_port())) for a in args]
        code, output = run_to_exit(args, busy_env(probe_port))
    assert code != 0
    assert f"127.0.0.1:{probe_port}" in output


@pytest.mark.parametrize("wish", ["listen()", LISTEN_VARIABLE])
def test_a_forked_child_serves_the_main_port_without_the_parents_probe_port(
    wish: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent keeps its probe port (asked for in code or by the variable); the
    child must not try (and fail) to open it on every request, and its own checks
    must start."""
    port = free_port()
    health = Health(interval=0.2)
    health.add_check("ok", lambda: True)
    client = Client(WSGIHealthMiddleware(lambda environ, start_response: [b""], health))
    if wish == LISTEN_VARIABLE:
        monkeypatch.setenv(LISTEN_VARIABLE, f"127.0.0.1:{port}")
    else:
        health.listen(port, "127.0.0.1")
    health.runtime.start_in_thread()
    try:
        assert health.listening == ("127.0.0.1", port)
        pid = os.fork()
        if pid == 0:
            try:
                deadline = time.monotonic() + 10
                while client.get("/health").status_code != 200:
                    if time.monotonic() > deadline:
                        os._exit(3)
                    time.sleep(0.02)
                os._exit(0 if health.listening is None else 4)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert get(port, "/health/live").status == 200
    finally:
        health.stop()


@pytest.mark.server
def test_connections_past_the_cap_evict_the_idle_not_the_probes(
    probe_server: tuple[Server, int],
) -> None:
    _, probe_port = probe_server
    hogs = []
    try:
        for _ in range(300):  # past the cap; each sends nothing
            with contextlib.suppress(OSError):
                hogs.append(socket.create_connection(("127.0.0.1", probe_port), timeout=5))
        answered = [probe(probe_port).status for _ in range(20)]
    finally:
        for hog in hogs:
            hog.close()
    assert answered == [200] * 20


@pytest.mark.server
def test_a_pipelining_client_never_starves_the_probes(probe_server: tuple[Server, int]) -> None:
    _, probe_port = probe_server
    flood = socket.create_connection(("127.0.0.1", probe_port), timeout=10)
    stop = threading.Event()

    def pipeline() -> None:
        batch = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n" * 8000
        with contextlib.suppress(OSError):
            while not stop.is_set():
                flood.sendall(batch)
                while flood.recv(1 << 20) and not stop.is_set():
                    if select.select([flood], [], [], 0)[0] == []:
                        break

    worker = threading.Thread(target=pipeline, daemon=True)
    worker.start()
    try:
        time.sleep(0.5)
        probes = [probe(probe_port, timeout=5.0) for _ in range(20)]
    finally:
        stop.set()
        flood.close()
        worker.join(5)
    assert all(p.status == 200 for p in probes), probes
    assert max(p.ms for p in probes) < 1000, [p.ms for p in probes]


@pytest.mark.server
def test_the_probe_port_negotiates_as_the_main_port_does() -> None:
    probe_port = free_port()
    env = {"HM_LISTEN": f"127.0.0.1:{probe_port}", "HM_NEGOTIATE": "1"}
    with server(uvicorn("tests.apps.busy:asgi_app"), env) as running:
        for port in (running.port, probe_port):
            text = get(port, "/health/any?format=text")
            assert text.headers["content-type"].startswith("text/plain"), port
            assert text.headers.get("vary") == "Accept"


@pytest.mark.server
def test_a_second_server_cannot_join_another_servers_probe_port() -> None:
    probe_port = free_port()
    args = gunicorn(
        "tests.apps.busy:inner_wsgi", "-c", "python:health_middleware.gunicorn", "-w", "2"
    )
    with server(args, busy_env(probe_port)) as first:
        assert probe(probe_port).status == 200
        other = [a.replace("{port}", str(free_port())) for a in args]
        code, output = run_to_exit(other, busy_env(probe_port))
        assert first.process.poll() is None
    assert code != 0
    assert "another server" in output
