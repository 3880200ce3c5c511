"""Ready-made checks. Each returns a check function (sync or async) to register with
``health.add_check(name, fn)``; the function carries its IETF ``component_type``.

Each has a ``timeout`` of its own for connecting and answering; keep it below the
check's ``timeout`` so a dependency that accepts and never answers fails cleanly, with
its connection closed, before the refresher abandons the run. Drivers are optional
extras, imported only when the check is made.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import time
from collections.abc import Callable, Container
from typing import Any, Protocol

from health_middleware.result import CheckFunction, CheckResult
from health_middleware.validation import positive, seconds

Check = CheckFunction  # the old name of CheckFunction, kept for imports


class _Cursor(Protocol):
    def execute(self, query: str) -> Any: ...
    def fetchone(self) -> Any: ...
    def close(self) -> Any: ...


class _Connection(Protocol):
    def cursor(self) -> Any: ...
    def close(self) -> Any: ...


def _typed(fn: CheckFunction, component_type: str) -> CheckFunction:
    fn.component_type = component_type  # type: ignore[attr-defined]
    return fn


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def _elapsed(started: float) -> CheckResult:
    """A pass whose observed value is the ``responseTime`` since ``started``, in ms."""
    return CheckResult(observed_value=_ms(started), observed_unit="ms")


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"this check needs {module}: pip install 'health_middleware[{extra}]'"
        ) from None


def _percent(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 100:
        raise ValueError(f"{name} must be a percentage in (0, 100], got {value!r}")
    return float(value)


def _graded(value: float, warn: float | None, fail: float | None) -> str:
    if fail is not None and value >= fail:
        return "fail"
    if warn is not None and value >= warn:
        return "warn"
    return "pass"


# -- the process and its host ----------------------------------------------------------


def disk(
    path: str | os.PathLike[str] = "/", *, warn: float = 90.0, fail: float = 95.0
) -> CheckFunction:
    """Used space of the filesystem holding ``path``, as ``utilization`` in percent."""
    warn, fail = _percent("warn", warn), _percent("fail", fail)
    if warn > fail:
        raise ValueError("warn must not be above fail")
    target = os.fspath(path)

    def check() -> CheckResult:
        usage = shutil.disk_usage(target)
        used = round(100.0 * (usage.total - usage.free) / usage.total, 2)
        status = _graded(used, warn, fail)
        output = None if status == "pass" else f"{used}% used"
        return CheckResult(status, observed_value=used, observed_unit="percent", output=output)

    return _typed(check, "system")


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: the peak is what is known
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory(*, warn_mib: float | None = None, fail_mib: float | None = None) -> CheckFunction:
    """The process's resident memory (RSS) in MiB, with optional thresholds."""
    for name, value in (("warn_mib", warn_mib), ("fail_mib", fail_mib)):
        if value is not None:
            positive(name, value, "MiB")

    def check() -> CheckResult:
        used = round(_rss_bytes() / 1048576, 1)
        status = _graded(used, warn_mib, fail_mib)
        output = None if status == "pass" else f"{used} MiB resident"
        return CheckResult(status, observed_value=used, observed_unit="MiB", output=output)

    return _typed(check, "system")


def event_loop_lag(*, warn: float = 0.1, fail: float = 0.5, sample: float = 0.01) -> CheckFunction:
    """How late the event loop wakes from a short sleep, in ms: under ASGI it runs on
    the app's loop, so a wedged or overloaded worker shows here (tag it ``live``)."""
    warn, fail, sample = seconds("warn", warn), seconds("fail", fail), seconds("sample", sample)

    async def check() -> CheckResult:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(sample)
        lag = max(0.0, loop.time() - started - sample)
        status = _graded(lag, warn, fail)
        output = None if status == "pass" else f"the loop woke {lag * 1000:.0f} ms late"
        return CheckResult(
            status, observed_value=round(lag * 1000, 3), observed_unit="ms", output=output
        )

    return _typed(check, "system")


# -- the network -------------------------------------------------------------------------


def tcp(host: str, port: int, *, timeout: float = 1.0) -> CheckFunction:
    """A TCP connection to ``host:port`` opens (then closes): ``responseTime`` in ms."""
    timeout = seconds("timeout", timeout)

    async def check() -> CheckResult:
        started = time.perf_counter()
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
        elapsed = _ms(started)
        writer.close()
        try:
            async with asyncio.timeout(timeout):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            pass
        return CheckResult(observed_value=elapsed, observed_unit="ms")

    return _typed(check, "system")


def http(
    url: str,
    *,
    expect: Container[int] = range(200, 400),
    timeout: float = 2.0,
    method: str = "GET",
    client: Any = None,
) -> CheckFunction:
    """An HTTP request answered with a status in ``expect``: ``responseTime`` in ms.
    ``client``: your ``httpx.AsyncClient`` or ``httpx.Client``, else one per run."""
    httpx = _need("httpx", "http")
    timeout = seconds("timeout", timeout)

    def grade(response: Any, started: float) -> CheckResult:
        elapsed = _ms(started)
        if response.status_code in expect:
            return CheckResult(observed_value=elapsed, observed_unit="ms")
        return CheckResult(
            "fail",
            observed_value=elapsed,
            observed_unit="ms",
            output=f"HTTP {response.status_code}",
        )

    if isinstance(client, httpx.Client):

        def check_sync() -> CheckResult:
            started = time.perf_counter()
            return grade(client.request(method, url, timeout=timeout), started)

        return _typed(check_sync, "system")
    if client is not None and not isinstance(client, httpx.AsyncClient):
        raise TypeError("client must be an httpx.AsyncClient or httpx.Client")

    async def check() -> CheckResult:
        started = time.perf_counter()
        if client is not None:
            return grade(await client.request(method, url, timeout=timeout), started)
        async with httpx.AsyncClient(timeout=timeout) as own:
            return grade(await own.request(method, url), started)

    return _typed(check, "system")


# -- datastores and brokers ------------------------------------------------------------


def dbapi(connect: Callable[[], Any], *, query: str = "SELECT 1") -> CheckFunction:
    """Open a DB-API connection with ``connect()``, run ``query``, close it:
    ``responseTime`` in ms. Give ``connect`` its own timeout (sqlite3 ``timeout=``,
    PyMySQL ``connect_timeout=`` and ``read_timeout=``, psycopg ``connect_timeout=``)."""
    if not callable(connect):
        raise TypeError("connect must be a callable returning a DB-API connection")

    def check() -> CheckResult:
        started = time.perf_counter()
        connection: _Connection = connect()
        try:
            cursor: _Cursor = connection.cursor()
            try:
                cursor.execute(query)
                cursor.fetchone()
            finally:
                cursor.close()
        finally:
            connection.close()
        return _elapsed(started)

    return _typed(check, "datastore")


def sqlalchemy(engine: Any, *, query: str = "SELECT 1", timeout: float = 1.0) -> CheckFunction:
    """A round trip through a SQLAlchemy ``Engine`` or ``AsyncEngine`` and its pool
    (the connection goes back to the pool): ``responseTime`` in ms. A sync engine's
    connect timeout is its own (``connect_args``)."""
    sa = _need("sqlalchemy", "sqlalchemy")
    timeout = seconds("timeout", timeout)
    statement = sa.text(query)
    asyncio_engine = _need("sqlalchemy.ext.asyncio", "sqlalchemy").AsyncEngine
    if isinstance(engine, asyncio_engine):

        async def check() -> CheckResult:
            started = time.perf_counter()
            async with asyncio.timeout(timeout), engine.connect() as connection:
                await connection.execute(statement)
            return _elapsed(started)

        return _typed(check, "datastore")
    if not isinstance(engine, sa.engine.Engine):
        raise TypeError("engine must be a SQLAlchemy Engine or AsyncEngine")

    def check_sync() -> CheckResult:
        started = time.perf_counter()
        with engine.connect() as connection:
            connection.execute(statement)
        return _elapsed(started)

    return _typed(check_sync, "datastore")


def postgres(target: Any, *, timeout: float = 1.0) -> CheckFunction:
    """PostgreSQL with psycopg 3: a ``dsn`` string (a connection per run, closed), or
    your ``psycopg_pool`` ``AsyncConnectionPool`` / ``ConnectionPool``."""
    psycopg = _need("psycopg", "postgres")
    timeout = seconds("timeout", timeout)
    if isinstance(target, str):
        dsn = target

        async def check() -> CheckResult:
            started = time.perf_counter()
            async with asyncio.timeout(timeout):
                connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
                try:
                    await connection.execute("SELECT 1")
                finally:
                    await connection.close()
            return _elapsed(started)

        return _typed(check, "datastore")
    pool = _need("psycopg_pool", "postgres")
    if isinstance(target, pool.AsyncConnectionPool):

        async def check_pool() -> CheckResult:
            started = time.perf_counter()
            async with asyncio.timeout(timeout), target.connection(timeout=timeout) as conn:
                await conn.execute("SELECT 1")
            return _elapsed(started)

        return _typed(check_pool, "datastore")
    if isinstance(target, pool.ConnectionPool):

        def check_sync_pool() -> CheckResult:
            started = time.perf_counter()
            with target.connection(timeout=timeout) as conn:
                conn.execute("SELECT 1")
            return _elapsed(started)

        return _typed(check_sync_pool, "datastore")
    raise TypeError("target must be a DSN string or a psycopg_pool (Async)ConnectionPool")


def redis(target: Any, *, timeout: float = 1.0) -> CheckFunction:
    """Redis ``PING``: a URL (a client per run, closed), or your ``redis.asyncio.Redis``
    or ``redis.Redis`` client: ``responseTime`` in ms."""
    client_module = _need("redis", "redis")
    asyncio_redis = _need("redis.asyncio", "redis")
    timeout = seconds("timeout", timeout)
    if isinstance(target, client_module.Redis):

        def check_sync() -> CheckResult:
            started = time.perf_counter()
            target.ping()
            return _elapsed(started)

        return _typed(check_sync, "datastore")
    if isinstance(target, asyncio_redis.Redis):

        async def check_client() -> CheckResult:
            started = time.perf_counter()
            async with asyncio.timeout(timeout):
                await target.ping()
            return _elapsed(started)

        return _typed(check_client, "datastore")
    if not isinstance(target, str):
        raise TypeError("target must be a redis URL or a redis.Redis / redis.asyncio.Redis")
    url = target

    async def check() -> CheckResult:
        started = time.perf_counter()
        client = asyncio_redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        try:
            async with asyncio.timeout(timeout):
                await client.ping()
        finally:
            await client.aclose()
        return _elapsed(started)

    return _typed(check, "datastore")


def amqp(url: str, *, timeout: float = 2.0) -> CheckFunction:
    """An AMQP 0-9-1 broker (RabbitMQ) completes the connection handshake, with pika:
    a connection per run, closed. ``responseTime`` in ms."""
    pika = _need("pika", "amqp")
    timeout = seconds("timeout", timeout)
    parameters = pika.URLParameters(url)
    parameters.socket_timeout = timeout
    parameters.stack_timeout = timeout
    parameters.blocked_connection_timeout = timeout
    parameters.connection_attempts = 1

    def check() -> CheckResult:
        started = time.perf_counter()
        connection = pika.BlockingConnection(parameters)
        try:
            elapsed = _ms(started)
        finally:
            connection.close()
        return CheckResult(observed_value=elapsed, observed_unit="ms")

    return _typed(check, "component")
