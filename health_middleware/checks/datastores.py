"""Datastores: PostgreSQL, MySQL/MariaDB, Redis, memcached, SQLAlchemy, any DB-API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from health_middleware.check import seconds
from health_middleware.checks._common import Check, elapsed, need, typed
from health_middleware.result import CheckResult


class _Cursor(Protocol):
    def execute(self, query: str) -> Any: ...
    def fetchone(self) -> Any: ...
    def close(self) -> Any: ...


class _Connection(Protocol):
    def cursor(self) -> Any: ...
    def close(self) -> Any: ...


def dbapi(connect: Callable[[], Any], *, query: str = "SELECT 1") -> Check:
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
        return elapsed(started)

    return typed(check, "datastore")


def sqlalchemy(engine: Any, *, query: str = "SELECT 1", timeout: float = 1.0) -> Check:
    """A round trip through a SQLAlchemy ``Engine`` or ``AsyncEngine`` and its pool
    (the connection goes back to the pool): ``responseTime`` in ms. A sync engine's
    connect timeout is its own (``connect_args``)."""
    sa = need("sqlalchemy", "sqlalchemy")
    timeout = seconds("timeout", timeout)
    statement = sa.text(query)
    asyncio_engine = need("sqlalchemy.ext.asyncio", "sqlalchemy").AsyncEngine
    if isinstance(engine, asyncio_engine):

        async def check() -> CheckResult:
            started = time.perf_counter()
            async with asyncio.timeout(timeout), engine.connect() as connection:
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


def postgres(target: Any, *, timeout: float = 1.0) -> Check:
    """PostgreSQL with psycopg 3: a ``dsn`` string (a connection per run, closed), or
    your ``psycopg_pool`` ``AsyncConnectionPool`` / ``ConnectionPool``."""
    psycopg = need("psycopg", "postgres")
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
            return elapsed(started)

        return typed(check, "datastore")
    pool = need("psycopg_pool", "postgres")
    if isinstance(target, pool.AsyncConnectionPool):

        async def check_pool() -> CheckResult:
            started = time.perf_counter()
            async with asyncio.timeout(timeout), target.connection(timeout=timeout) as conn:
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


def redis(target: Any, *, timeout: float = 1.0) -> Check:
    """Redis ``PING``: a URL (a client per run, closed), or your ``redis.asyncio.Redis``
    or ``redis.Redis`` client: ``responseTime`` in ms."""
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
            async with asyncio.timeout(timeout):
                await target.ping()
            return elapsed(started)

        return typed(check_client, "datastore")
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
        return elapsed(started)

    return typed(check, "datastore")
