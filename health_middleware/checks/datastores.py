"""Datastores: PostgreSQL, MySQL/MariaDB, Redis, memcached, SQLAlchemy, any DB-API."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from typing import Any, Protocol

from health_middleware.checks._common import (
    Check,
    checked_url,
    closing_stream,
    elapsed,
    host_name,
    need,
    no_arguments,
    port_number,
    text,
    typed,
)
from health_middleware.config.callables import makes_check
from health_middleware.config.validation import seconds
from health_middleware.engine.stalls import within
from health_middleware.model.result import CheckResult


class _Cursor(Protocol):
    def execute(self, query: str) -> Any: ...
    def fetchone(self) -> Any: ...
    def close(self) -> Any: ...


class _Connection(Protocol):
    def cursor(self) -> Any: ...
    def close(self) -> Any: ...


@makes_check("checks.dbapi(lambda: driver.connect(...))")
def dbapi(connect: Callable[[], Any], *, query: str = "SELECT 1") -> Check:
    """Any DB-API 2.0 database: open a connection, run ``query``, close it.

    The check is sync (it runs on a check thread), a connection per run.

    Args:
        connect: A function of no arguments that returns a new DB-API connection,
            e.g. ``lambda: sqlite3.connect(path, timeout=1)``. Give it a timeout of
            its own (sqlite3 ``timeout=``, PyMySQL ``connect_timeout=`` and
            ``read_timeout=``, psycopg ``connect_timeout=``): a sync run cannot be
            interrupted.
        query: The statement to run; its first row is fetched.

    Returns:
        A check whose observed value is the round trip's ``responseTime`` in ms.
    """
    if not callable(connect):
        raise TypeError("connect must be a callable returning a DB-API connection")
    no_arguments("connect", connect)
    query = text("query", query)

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
        return elapsed(started)

    return typed(check, "datastore")


@makes_check("checks.sqlalchemy(engine)")
def sqlalchemy(engine: Any, *, query: str = "SELECT 1", timeout: float = 1.0) -> Check:
    """A round trip through a SQLAlchemy engine and its pool (the ``sqlalchemy``
    extra): a connection from the pool runs ``query`` and goes back to it.

    Args:
        engine: Your ``Engine`` (a sync check, on a check thread) or ``AsyncEngine``
            (an async check).
        query: The statement to run.
        timeout: Seconds the round trip may take, for an ``AsyncEngine``. A sync
            engine's connect timeout is its own (``connect_args``).

    Returns:
        A check whose observed value is the round trip's ``responseTime`` in ms.
    """
    sa = need("sqlalchemy", "sqlalchemy")
    timeout, query = seconds("timeout", timeout), text("query", query)
    statement = sa.text(query)
    asyncio_engine = need("sqlalchemy.ext.asyncio", "sqlalchemy").AsyncEngine
    if isinstance(engine, asyncio_engine):

        async def check() -> CheckResult:
            started = time.perf_counter()
            async with within(timeout), engine.connect() as connection:
                await connection.execute(statement)
            return elapsed(started)

        return typed(check, "datastore")
    if not isinstance(engine, sa.engine.Engine):
        raise TypeError("engine must be a SQLAlchemy Engine or AsyncEngine")

    def check_sync() -> CheckResult:
        started = time.perf_counter()
        with engine.connect() as connection:
            connection.execute(statement)
        return elapsed(started)

    return typed(check_sync, "datastore")


@makes_check("checks.postgres(dsn)")
def postgres(target: Any, *, timeout: float = 1.0) -> Check:
    """PostgreSQL answers ``SELECT 1``, with psycopg 3 (the ``postgres`` extra).

    Args:
        target: A connection string, as a URL (``postgresql://user@host:5432/db``) or
            ``key=value`` pairs (an async check, a connection per run, closed), or
            your ``psycopg_pool`` ``AsyncConnectionPool`` (async) or
            ``ConnectionPool`` (sync; the connection goes back to the pool). A
            string psycopg cannot parse is refused at once, without repeating it (it
            may hold a password).
        timeout: Seconds the round trip may take (for a ``ConnectionPool``: the wait
            for its connection).

    Returns:
        A check whose observed value is the round trip's ``responseTime`` in ms.
    """
    psycopg = need("psycopg", "postgres")
    timeout = seconds("timeout", timeout)
    if isinstance(target, str):
        dsn = _conninfo(psycopg, target)

        async def check() -> CheckResult:
            started = time.perf_counter()
            async with within(timeout):
                connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
                try:
                    await connection.execute("SELECT 1")
                finally:
                    await connection.close()
            return elapsed(started)

        return typed(check, "datastore")
    pool = need("psycopg_pool", "postgres")
    if isinstance(target, pool.AsyncConnectionPool):

        async def check_pool() -> CheckResult:
            started = time.perf_counter()
            async with within(timeout), target.connection(timeout=timeout) as conn:
                await conn.execute("SELECT 1")
            return elapsed(started)

        return typed(check_pool, "datastore")
    if isinstance(target, pool.ConnectionPool):

        def check_sync_pool() -> CheckResult:
            started = time.perf_counter()
            with target.connection(timeout=timeout) as conn:
                conn.execute("SELECT 1")
            return elapsed(started)

        return typed(check_sync_pool, "datastore")
    raise TypeError("target must be a DSN string or a psycopg_pool (Async)ConnectionPool")


def _conninfo(psycopg: Any, dsn: str) -> str:
    """``dsn`` parsed by psycopg as libpq would parse it; the messages never repeat
    it (it may hold a password)."""
    try:
        fields = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise ValueError(
            "target is not a PostgreSQL connection string that psycopg can parse (not "
            "repeated here: it may hold a password): give a URL such as "
            "'postgresql://user@host:5432/dbname' or key=value pairs such as "
            "'host=db port=5432 dbname=app'"
        ) from None
    ports = str(fields.get("port", "")).split(",")
    if not all(port.strip().isdigit() or not port.strip() for port in ports):
        raise ValueError("target's port is not a number: give it as a number, e.g. 5432")
    return dsn


@makes_check("checks.redis(url)")
def redis(target: Any, *, timeout: float = 1.0) -> Check:
    """Redis answers ``PING`` (the ``redis`` extra).

    Args:
        target: A URL (``redis://`` or ``rediss://`` with a host, or ``unix://`` with
            the socket's path: an async check, a client per run, closed), or your
            ``redis.asyncio.Redis`` (async) or ``redis.Redis`` client. A sync
            client's own timeouts and retry policy bound its runs (redis-py retries
            with back-off by default).
        timeout: Seconds to connect and answer, for a URL or an async client.

    Returns:
        A check whose observed value is the round trip's ``responseTime`` in ms.
    """
    client_module = need("redis", "redis")
    asyncio_redis = need("redis.asyncio", "redis")
    timeout = seconds("timeout", timeout)
    if isinstance(target, client_module.Redis):

        def check_sync() -> CheckResult:
            started = time.perf_counter()
            target.ping()
            return elapsed(started)

        return typed(check_sync, "datastore")
    if isinstance(target, asyncio_redis.Redis):

        async def check_client() -> CheckResult:
            started = time.perf_counter()
            async with within(timeout):
                await target.ping()
            return elapsed(started)

        return typed(check_client, "datastore")
    if not isinstance(target, str):
        raise TypeError("target must be a redis URL or a redis.Redis / redis.asyncio.Redis")
    parts = checked_url("url", target, ("redis", "rediss", "unix"), host=False)
    if parts.scheme.lower() == "unix" and not parts.path:
        raise ValueError("url must name the socket's path")
    if parts.scheme.lower() != "unix" and not parts.hostname:
        raise ValueError("url must name a host")
    url = target

    async def check() -> CheckResult:
        started = time.perf_counter()
        client = asyncio_redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        try:
            async with within(timeout):
                await client.ping()
        finally:
            await client.aclose()
        return elapsed(started)

    return typed(check, "datastore")


def _mysql_options(url: str) -> dict[str, Any]:
    parts = checked_url("url", url, ("mysql", "mariadb"), host=False)
    return {
        "host": parts.hostname or "localhost",
        "port": parts.port or 3306,
        "user": urllib.parse.unquote(parts.username or "") or None,
        "password": urllib.parse.unquote(parts.password or ""),
        "db": parts.path.lstrip("/") or None,
    }


@makes_check("checks.mysql(url)")
def mysql(target: Any, *, query: str = "SELECT 1", timeout: float = 1.0) -> Check:
    """MySQL or MariaDB runs ``query``, with aiomysql (the ``mysql`` extra).

    Args:
        target: A ``mysql://user:password@host:port/db`` URL (``mariadb://`` too; a
            connection per run, closed), or your ``aiomysql.Pool`` (the connection
            goes back to it).
        query: The statement to run; its first row is fetched.
        timeout: Seconds to connect and answer.

    Returns:
        An async check whose observed value is the round trip's ``responseTime`` in
            ms.
    """
    aiomysql = need("aiomysql", "mysql")
    timeout, query = seconds("timeout", timeout), text("query", query)
    if isinstance(target, aiomysql.Pool):

        async def check_pool() -> CheckResult:
            started = time.perf_counter()
            async with (
                within(timeout),
                target.acquire() as connection,
                connection.cursor() as cursor,
            ):
                await cursor.execute(query)
                await cursor.fetchone()
            return elapsed(started)

        return typed(check_pool, "datastore")
    if not isinstance(target, str):
        raise TypeError("target must be a mysql:// URL or an aiomysql.Pool")
    options = _mysql_options(target)

    async def check() -> CheckResult:
        started = time.perf_counter()
        connection = None
        try:
            async with within(timeout):
                connection = await aiomysql.connect(
                    **options, connect_timeout=timeout, autocommit=True
                )
                async with connection.cursor() as cursor:
                    await cursor.execute(query)
                    await cursor.fetchone()
        finally:
            if connection is not None:
                connection.close()  # no COM_QUIT: it could wait on a peer gone quiet
        return elapsed(started)

    return typed(check, "datastore")


@makes_check("checks.memcached(host, port)")
def memcached(host: str = "127.0.0.1", port: int = 11211, *, timeout: float = 1.0) -> Check:
    """memcached answers ``version`` over its text protocol (no driver needed); a
    connection per run, closed.

    Args:
        host: The server's host name or address, without a port.
        port: The server's port.
        timeout: Seconds to connect and answer.

    Returns:
        An async check whose observed value is the round trip's ``responseTime`` in
            ms.
    """
    host, port = host_name("host", host), port_number(port)
    timeout = seconds("timeout", timeout)

    async def check() -> CheckResult:
        started = time.perf_counter()
        async with within(timeout), closing_stream(host, port) as (reader, writer):
            writer.write(b"version\r\n")
            reply = await reader.readline()
        if not reply.startswith(b"VERSION "):
            return CheckResult("fail", output="memcached gave an unexpected reply")
        return elapsed(started)

    return typed(check, "datastore")
