"""Helpers for the tests: drive ASGI apps in process, run real servers as subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from health_middleware import HealthMiddleware

REPO = Path(__file__).resolve().parent.parent
# The package's public modules besides health_middleware itself (the documentation
# may name them; tests/test_docstrings.py holds their docstrings complete). Every
# other module is internal.
PUBLIC_MODULES = frozenset(
    {
        "asgi",
        "celery",
        "checks",
        "django",
        "formats",
        "grpc",
        "gunicorn",
        "prometheus",
        "serve",
        "telemetry",
        "wsgi",
    }
)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def http_scope(path: str, method: str = "GET", root_path: str = "") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }


def _collect(messages: list[dict[str, Any]]) -> Response:
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
    return Response(start["status"], headers, body)


async def call(app: Any, path: str, method: str = "GET", root_path: str = "") -> Response:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(http_scope(path, method, root_path), receive, send)
    return _collect(messages)


async def call_app(app: Any, path: str) -> Response:
    """GET ``path`` from the app behind the middleware as a server would: the body
    once, then no message until the client goes (frameworks that listen for the
    disconnect in a task of their own, Django and Quart, want nothing else)."""
    messages: list[dict[str, Any]] = []
    bodies = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if bodies:
            return bodies.pop()
        await asyncio.Event().wait()  # the client stays until the app is done
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(http_scope(path), receive, send)
    return _collect(messages)


def lifespan_startup(health: Any) -> list[dict[str, Any]]:
    """What the server is sent when an app that completes its startup runs behind the
    middleware with ``health`` and the server sends ``lifespan.startup``."""
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})
        await receive()

    async def receive() -> dict[str, Any]:
        if not sent:
            return {"type": "lifespan.startup"}
        await asyncio.sleep(3600)
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware: Any = HealthMiddleware(app, health)
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    asyncio.run(asyncio.wait_for(middleware(scope, receive, send), 5))
    return sent


def call_without_waiting(app: HealthMiddleware, path: str, method: str = "GET") -> Response:
    """Run one request to completion in a single step of its coroutine: if the
    middleware awaited anything but our instant ``send`` it would suspend, and this
    raises. This proves a probe never waits on a check, a lock or the loop."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("a health request must not read the request body")

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    coroutine = app(http_scope(path, method), receive, send)  # type: ignore[arg-type]
    try:
        coroutine.send(None)
    except StopIteration:
        return _collect(messages)
    coroutine.close()
    raise AssertionError(f"the request for {path} suspended: it waited on something")


async def poll(
    app: Any, path: str, until: Callable[[Response], bool], timeout: float = 10.0
) -> Response:
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        response = await call(app, path)
        if until(response):
            return response
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never satisfied the condition; last: {response}")
        await asyncio.sleep(0.01)


# -- real servers --------------------------------------------------------------------


REQUIRE_SERVICES = os.environ.get("HEALTH_MIDDLEWARE_REQUIRE_SERVICES") == "1"


def require_or_skip(reason: str) -> None:
    """A missing tool or service skips the test, except where CI requires them all."""
    if REQUIRE_SERVICES:
        pytest.fail(f"HEALTH_MIDDLEWARE_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def service(name: str, port: int) -> int:
    """The port of a local service (PostgreSQL, MariaDB, Redis, RabbitMQ) that answers on
    127.0.0.1; skip the test where it does not (fail where CI requires the services)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        require_or_skip(f"{name} is not reachable on 127.0.0.1:{port} ({exc})")
    return port


def threads() -> int:
    """How many threads this process runs, less the refresher's stall watch
    (``health-stalls``, alive only while sync checks are in flight: see stalls.py)."""
    import threading

    return sum(thread.name != "health-stalls" for thread in threading.enumerate())


def open_sockets() -> int:
    """How many sockets this process has open (Linux)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def debian_tool(name: str, package: str) -> str:
    """The path of a tool from Debian's packages, installing the package first where
    this is a Debian machine and we are root (CI); otherwise skip (or fail in CI)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
        if subprocess.run(
            install, env=env, capture_output=True, timeout=600, check=False
        ).returncode:
            subprocess.run(
                ["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600, check=False
            )
            subprocess.run(install, env=env, capture_output=True, timeout=600, check=False)
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        if found:
            return found
    require_or_skip(f"{name} is not installed and cannot be installed here (Debian: {package})")
    raise AssertionError("unreachable")


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium (Debian's) run with ``args`` in a fresh profile, isolated from
    the network's services; skips (fails in CI) where it cannot be had."""
    binary = debian_tool("chromium", "chromium")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )


def uvicorn(app: str, *options: str) -> list[str]:
    """Arguments for ``python -m``: uvicorn serving ``app`` on 127.0.0.1:{port}."""
    return ["uvicorn", app, "--host", "127.0.0.1", "--port", "{port}", *options]


def gunicorn(app: str, *options: str) -> list[str]:
    """Arguments for ``python -m``: gunicorn serving ``app`` on 127.0.0.1:{port}."""
    return ["gunicorn", app, "--bind", "127.0.0.1:{port}", *options]


def granian(interface: str, app: str, *options: str) -> list[str]:
    """Arguments for ``python -m``: granian, one worker, serving ``app`` through
    ``interface`` (asgi, wsgi) on 127.0.0.1:{port}."""
    return [
        "granian",
        "--interface",
        interface,
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "1",
        *options,
        app,
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(port: int, path: str, method: str = "GET", timeout: float = 5.0) -> Response:
    """One request on a new connection (so a multi-worker server may pick any worker)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


def grpc_check(port: int, service: str = "", timeout: float = 1.0) -> int | str:
    """One ``grpc.health.v1.Health/Check`` of ``service`` on a channel of its own: the
    serving status (1 SERVING, 2 NOT_SERVING), or the name of the code the call ended
    with (``"NOT_FOUND"``, ``"UNAVAILABLE"``)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            return str(exc.code().name)
    return int(reply.status)


def answer(port: int, path: str, timeout: float = 2.0) -> Response | None:
    """One GET on a new connection, or None when nothing answers (refused, reset, timed out)."""
    try:
        return get(port, path, timeout=timeout)
    except OSError:
        return None


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None
    final_output: str | None = None

    def get(self, path: str, method: str = "GET") -> Response:
        return get(self.port, path, method)

    def output(self) -> str:
        """What the server printed (all of it, once it has stopped)."""
        if self.final_output is not None:
            return self.final_output
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def server(
    args: list[str],
    env: dict[str, str] | None = None,
    ready: str | Callable[[int], bool] = "/health/live",
    timeout: float = 30.0,
    prefix: tuple[str, ...] = (),
    *,
    python: str = sys.executable,
    outside: Path | None = None,
) -> Iterator[Server]:
    """Start ``python -m <args>`` (behind ``prefix``, e.g. ``unshare``) with ``{port}``
    filled in (in ``env``'s values too), wait until ``ready`` answers (an HTTP path,
    or a function of the port that says whether the server answers), and always stop
    the whole process group. It runs this checkout's code, unless ``outside`` names a
    folder to run in instead, without PYTHONPATH: then ``python`` imports only what
    its environment installed."""
    port = free_port()
    command = [*prefix, python, "-m", *(a.replace("{port}", str(port)) for a in args)]
    chosen = {name: value.replace("{port}", str(port)) for name, value in (env or {}).items()}
    if outside is None:
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **chosen}
    else:
        full_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | chosen
    with tempfile.NamedTemporaryFile("wb", suffix=".log", delete=False) as log_file:
        log = Path(log_file.name)
        process = subprocess.Popen(
            command,
            cwd=outside or REPO,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    running = Server(port, process, log, full_env)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"{command} exited {process.returncode}:\n{running.output()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if callable(ready):
                    if ready(port):
                        break
                else:
                    running.get(ready)
                    break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{command} did not answer in {timeout} s:\n{running.output()}"
                )
            time.sleep(0.05)
        yield running
    finally:
        running.exit_code = stop(process)
        running.final_output = log.read_text(errors="replace")
        log.unlink(missing_ok=True)


def run_to_exit(args: list[str], env: dict[str, str], timeout: float = 60.0) -> tuple[int, str]:
    """Run ``python -m <args>`` (a server expected to stop by itself) to its exit:
    its exit code and output; a process group still running at ``timeout`` is stopped."""
    process = subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(process)
        output, _ = process.communicate()
    finally:
        stop(process)  # its workers too, whatever happened
    return process.returncode, output.decode(errors="replace")


def stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> int:
    """SIGTERM the process group, then SIGKILL it if it lingers; return the exit code."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.wait(grace)


# -- the built-in checks through outages (tests/test_checks.py, tests/test_checks_more.py)


def run_check(check: Any) -> Any:
    """One run of a check, sync or async, on a fresh loop."""
    import asyncio
    import inspect

    return asyncio.run(check()) if inspect.iscoroutinefunction(check) else check()


def cut_then_heal(proxy: Any, check: Any, interval: float, timeout: float) -> None:
    """Behind ``proxy`` (a FaultProxy), the check registered with a ``Health`` passes;
    cut, it fails within an interval and its timeout; healed, it passes again as fast."""
    import asyncio

    from health_middleware import Health
    from tests.test_asgi import plain_app

    health = Health(interval=interval, timeout=timeout)
    health.add_check("dependency", check)
    app = HealthMiddleware(plain_app, health)

    async def scenario() -> tuple[float, float]:
        async def status() -> str:
            doc = (await call(app, "/health")).json()
            return str(doc["checks"]["dependency"][0]["status"]) if doc["checks"] else "none"

        async def until(wanted: str, bound: float) -> float:
            started = time.monotonic()
            while await status() != wanted:
                assert time.monotonic() - started < bound + 5, f"never {wanted}"
                await asyncio.sleep(0.01)
            return time.monotonic() - started

        await until("pass", 10)
        proxy.cut()
        to_fail = await until("fail", interval + timeout)
        proxy.heal()
        to_pass = await until("pass", interval + timeout)
        await health.stop_async()
        return to_fail, to_pass

    to_fail, to_pass = asyncio.run(scenario())
    slack = 0.75  # a shared 2-core machine
    assert to_fail < interval + timeout + slack
    assert to_pass < interval + timeout + slack


def black_hole_runs(check: Any, runs: int, timeout: float) -> None:
    """Against a black hole, each of ``runs`` runs fails by the check's own ``timeout``
    and leaves no thread, asyncio task or socket behind."""
    import asyncio
    import inspect
    import threading

    threads, sockets = threading.active_count(), open_sockets()

    async def all_runs() -> tuple[int, int]:
        failures = 0
        for _ in range(runs):
            try:
                if inspect.iscoroutinefunction(check):
                    result = await check()
                else:
                    result = await asyncio.to_thread(check)
                failures += result.status == "fail"
            except Exception:
                failures += 1
        await asyncio.sleep(0.05)
        return failures, len(asyncio.all_tasks())

    started = time.monotonic()
    failures, tasks = asyncio.run(all_runs())
    elapsed = time.monotonic() - started
    assert failures == runs
    assert tasks == 1  # only the test's own
    assert elapsed < runs * timeout * 20  # each run ended by its timeout
    assert threading.active_count() <= threads + 1  # asyncio.to_thread's one worker
    deadline = time.monotonic() + 5  # a transport closes on the loop's next turn
    while open_sockets() > sockets + 1:
        assert time.monotonic() < deadline, f"{sockets} sockets before, {open_sockets()} after"
        time.sleep(0.05)


# -- services and daemons shared by the checks' tests


MARIADB = 3306


def mariadb_connect(port: int, timeout: float) -> Callable[[], Any]:
    import pymysql

    return lambda: pymysql.connect(
        host="127.0.0.1",
        port=port,
        user="root",
        password="",
        database="test",
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
    )


def mariadb_connections() -> int:
    admin = mariadb_connect(MARIADB, 5)()
    try:
        cursor = admin.cursor()
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"
        )
        return int(cursor.fetchone()[0])
    finally:
        admin.close()


@contextlib.contextmanager
def daemon(args: list[str], port: int, timeout: float = 30.0) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server ``args`` (not Python's: ``memcached``, ``dnsmasq``) that listens on
    127.0.0.1:``port`` over TCP, wait until it accepts, and always stop it by its pid."""
    process = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise AssertionError(f"{args[0]} exited {process.returncode}: {error}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"{args[0]} did not listen in {timeout} s"
                time.sleep(0.05)
        yield process
    finally:
        stop(process)
        if process.stderr:
            process.stderr.close()


@contextlib.contextmanager
def celery_process(
    broker: str,
    app: str = "tests.apps.celery_app",
    pool: str = "solo",
    env: dict[str, str] | None = None,
) -> Iterator[tuple[Any, subprocess.Popen[bytes]]]:
    """A real Celery worker subprocess of ``app`` (a module) with ``pool`` on
    ``broker``, its output in ``env``'s HM_LOG if set; yields a Celery app of its own on
    that broker and the worker's process at once (not waiting for it to be ready), and
    always stops its process group."""
    from celery import Celery

    client = Celery("health_middleware_tests", broker=broker)
    command = [sys.executable, "-m", "celery", "-A", app, "worker", f"--pool={pool}"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    if pool != "solo":
        command += ["--concurrency=2"]
    command += ["-n", f"hm-{os.getpid()}-{time.monotonic_ns()}@%h", "--loglevel=WARNING"]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "HM_CELERY_BROKER": broker, **(env or {})}
    log = full_env.get("HM_LOG")
    with open(log or os.devnull, "wb") as output:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield client, process
    finally:
        stop(process)


@contextlib.contextmanager
def celery_worker(broker: str) -> Iterator[Any]:
    """A real Celery worker subprocess (``tests.apps.celery_app``) on ``broker``; yields
    a Celery app of its own on that broker once the worker answers its ping."""
    with celery_process(broker) as (app, process):
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            assert process.poll() is None, f"the celery worker exited {process.returncode}"
            assert time.monotonic() < deadline, "the celery worker never answered a ping"
        yield app
