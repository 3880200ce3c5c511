"""The built-in checks against the real servers on this machine, through real outages.

A fault-injecting proxy sits between each check and its server: cut, the check fails
within its timeout; healed, it passes within one interval; black-holed (accepts, never
answers), it fails by its own timeout with no growth in threads, tasks or sockets.
1,000 runs leave each server's connection count where it started.
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from health_middleware import checks
from tests.faultproxy import FaultProxy, fault_proxy
from tests.support import (
    black_hole_runs,
    cut_then_heal,
    mariadb_connect,
    mariadb_connections,
    open_sockets,
    run_check,
    server,
    service,
    uvicorn,
)

pytestmark = pytest.mark.server

PG, MARIADB, REDIS, RABBITMQ = 5432, 3306, 6379, 5672
Factory = Callable[[int, float], Any]  # (port, timeout) -> check function


def pg_dsn(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/test"


def psycopg_connect(port: int, timeout: float) -> Callable[[], Any]:
    import psycopg

    return lambda: psycopg.connect(pg_dsn(port), connect_timeout=max(2, int(timeout)))


def redis_client(port: int, timeout: float) -> Any:
    """A sync client of the user's, configured as its owner would: timeouts, no retries
    (redis-py retries with backoff by default, seconds per failed call)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def sqlalchemy_engine(url: str, asynchronous: bool = False) -> Any:
    import sqlalchemy
    from sqlalchemy.ext.asyncio import create_async_engine

    return create_async_engine(url) if asynchronous else sqlalchemy.create_engine(url)


FACTORIES: dict[str, tuple[int, Factory]] = {
    "postgres-dsn-async": (PG, lambda p, t: checks.postgres(pg_dsn(p), timeout=t)),
    "postgres-dbapi-sync": (PG, lambda p, t: checks.dbapi(psycopg_connect(p, t))),
    "mariadb-dbapi-sync": (MARIADB, lambda p, t: checks.dbapi(mariadb_connect(p, t))),
    "redis-url-async": (REDIS, lambda p, t: checks.redis(f"redis://127.0.0.1:{p}/0", timeout=t)),
    "redis-client-sync": (REDIS, lambda p, t: checks.redis(redis_client(p, t))),
    "rabbitmq-amqp-sync": (
        RABBITMQ,
        lambda p, t: checks.amqp(f"amqp://guest:guest@127.0.0.1:{p}/%2F", timeout=t),
    ),
    "tcp-async": (REDIS, lambda p, t: checks.tcp("127.0.0.1", p, timeout=t)),
}
NAMES = {PG: "PostgreSQL", MARIADB: "MariaDB", REDIS: "Redis", RABBITMQ: "RabbitMQ"}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_passes_against_the_real_server(name: str) -> None:
    port, factory = FACTORIES[name]
    service(NAMES[port], port)
    result = run_check(factory(port, 2.0))
    assert result.status == "pass"
    assert result.observed_unit == "ms"
    assert result.observed_value >= 0


def test_pools_and_clients_against_the_real_servers() -> None:
    import psycopg_pool
    import redis
    import redis.asyncio

    service("PostgreSQL", PG)
    service("Redis", REDIS)
    service("MariaDB", MARIADB)

    with psycopg_pool.ConnectionPool(pg_dsn(PG), min_size=1, max_size=2, open=True) as pool:
        assert checks.postgres(pool)().status == "pass"

    async def asynchronous() -> list[str]:
        async with psycopg_pool.AsyncConnectionPool(pg_dsn(PG), min_size=1, open=False) as pool:
            first = await checks.postgres(pool)()
        client = redis.asyncio.Redis(host="127.0.0.1", port=REDIS)
        second = await checks.redis(client)()
        await client.aclose()
        engine = sqlalchemy_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test", True)
        third = await checks.sqlalchemy(engine)()
        await engine.dispose()
        return [first.status, second.status, third.status]

    assert asyncio.run(asynchronous()) == ["pass"] * 3
    for url in (
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "mysql+pymysql://root@127.0.0.1:3306/test",
    ):
        engine = sqlalchemy_engine(url)
        check = checks.sqlalchemy(engine)
        assert check.component_type == "datastore"  # type: ignore[attr-defined]
        assert check().status == "pass"
        engine.dispose()
    assert checks.dbapi(lambda: sqlite3.connect(":memory:"))().status == "pass"


def test_host_checks(tmp_path: Path) -> None:
    assert checks.disk(tmp_path)().observed_unit == "percent"
    assert checks.disk(tmp_path, warn=0.001, fail=100)().status in ("warn", "fail")
    assert checks.memory()().observed_value > 1
    assert checks.memory(fail_mib=1)().status == "fail"
    lag = asyncio.run(checks.event_loop_lag()())
    assert lag.status == "pass"
    assert lag.observed_unit == "ms"

    async def blocked() -> Any:
        check = asyncio.ensure_future(checks.event_loop_lag(warn=0.05, fail=0.1)())
        await asyncio.sleep(0)
        time.sleep(0.15)  # the app blocks its loop
        return await check

    assert asyncio.run(blocked()).status == "fail"
    with pytest.raises(ValueError, match="percentage"):
        checks.disk(warn=0)
    with pytest.raises(ValueError, match="not be above"):
        checks.disk(warn=95, fail=90)
    with pytest.raises(ValueError, match="number of MiB"):
        checks.memory(warn_mib=0)


def test_http_check(tmp_path: Path) -> None:
    import httpx

    flag = tmp_path / "flag"
    with server(
        uvicorn("tests.apps.flagged:asgi_app"), {"HM_FLAG": str(flag), "HM_INTERVAL": "0.1"}
    ) as running:
        base = f"http://127.0.0.1:{running.port}"
        assert run_check(checks.http(f"{base}/")).status == "pass"
        with httpx.Client() as client:
            assert checks.http(f"{base}/", client=client)().status == "pass"
        flag.touch()
        deadline = time.monotonic() + 5
        while (result := run_check(checks.http(f"{base}/health/ready"))).status == "pass":
            assert time.monotonic() < deadline
        assert result.output == "HTTP 503"
        assert run_check(checks.http(f"{base}/health/ready", expect={200, 503})).status == "pass"
    with pytest.raises(TypeError, match="httpx"):
        checks.http("http://x", client=object())


OUTAGE_INTERVAL, OUTAGE_TIMEOUT = 0.2, 0.5


@pytest.fixture(params=sorted(FACTORIES))
def proxied(request: pytest.FixtureRequest) -> Iterator[tuple[str, FaultProxy, Any]]:
    """(the check's name, a proxy to its real server, the check made through it)"""
    port, factory = FACTORIES[request.param]
    service(NAMES[port], port)
    with fault_proxy(port) as proxy:
        yield request.param, proxy, factory(proxy.port, OUTAGE_TIMEOUT / 2)


def test_cut_fails_within_the_timeout_and_heal_passes_within_an_interval(
    proxied: tuple[str, FaultProxy, Any],
) -> None:
    _, proxy, check = proxied
    cut_then_heal(proxy, check, OUTAGE_INTERVAL, OUTAGE_TIMEOUT)


BLACKHOLE_RUNS, BLACKHOLE_TIMEOUT = 100, 0.05


def test_a_black_hole_fails_by_timeout_without_leaking(
    proxied: tuple[str, FaultProxy, Any],
) -> None:
    name, proxy, _ = proxied
    factory = FACTORIES[name][1]
    if name.startswith("tcp"):
        pytest.skip("a TCP connect succeeds against a black hole: the handshake is all it checks")
    if name == "postgres-dbapi-sync":
        pytest.skip(
            "libpq's connect_timeout is whole seconds, 2 at least: 100 runs take 200 s "
            "(PostgreSQL's black hole is covered by the async postgres check)"
        )
    check = factory(proxy.port, BLACKHOLE_TIMEOUT)
    proxy.blackhole()
    black_hole_runs(check, BLACKHOLE_RUNS, BLACKHOLE_TIMEOUT)


def pg_connections() -> int:
    import psycopg

    with psycopg.connect(pg_dsn(PG), autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = 'test' AND pid <> pg_backend_pid()"
        ).fetchone()
        return int(row[0]) if row else -1


def redis_connections() -> int:
    import redis

    admin = redis.Redis(host="127.0.0.1", port=REDIS)
    try:
        return len(admin.client_list()) - 1
    finally:
        admin.close()


COUNTERS: dict[str, tuple[int, Callable[[], int]]] = {
    "postgres-dsn-async": (PG, pg_connections),
    "postgres-dbapi-sync": (PG, pg_connections),
    "mariadb-dbapi-sync": (MARIADB, mariadb_connections),
    "redis-url-async": (REDIS, redis_connections),
    "redis-client-sync": (REDIS, redis_connections),
}


@pytest.mark.parametrize("name", sorted(COUNTERS))
def test_a_thousand_runs_leave_the_server_connection_count_unchanged(name: str) -> None:
    port, counter = COUNTERS[name]
    service(NAMES[port], port)
    check = FACTORIES[name][1](port, 2.0)
    assert run_check(check).status == "pass"  # a client of the user's may keep one connection
    before, sockets = counter(), open_sockets()

    async def runs() -> int:
        passed = 0
        for _ in range(1000):
            result = await check() if inspect.iscoroutinefunction(check) else check()
            passed += result.status == "pass"
        return passed

    assert asyncio.run(runs()) == 1000
    deadline = time.monotonic() + 5  # the server may take a moment to reap a backend
    while (after := counter()) > before:
        assert time.monotonic() < deadline, f"{before} connections before, {after} after"
        time.sleep(0.05)
    assert open_sockets() <= sockets + 1  # a client's pooled connection at most


def test_every_check_carries_its_component_type_and_scope(tmp_path: Path) -> None:
    made = {
        "disk": checks.disk(tmp_path),
        "memory": checks.memory(),
        "event_loop_lag": checks.event_loop_lag(),
        "tcp": checks.tcp("127.0.0.1", 1),
        "http": checks.http("http://127.0.0.1:1/"),
        "dbapi": checks.dbapi(lambda: sqlite3.connect(":memory:")),
        "postgres": checks.postgres(pg_dsn(PG)),
        "redis": checks.redis("redis://127.0.0.1:1/0"),
        "amqp": checks.amqp("amqp://127.0.0.1:1/%2F"),
    }
    process = {"memory", "event_loop_lag"}
    for name, check in made.items():
        assert check.scope == ("process" if name in process else "instance"), name  # type: ignore[attr-defined]
        assert check.component_type in ("system", "datastore", "component"), name  # type: ignore[attr-defined]
    assert set(made) <= set(checks.__all__)


def df_percent(path: Path) -> float:
    """What ``df`` says of the filesystem holding ``path`` (reserved blocks excluded)."""
    import subprocess

    out = subprocess.run(
        ["df", "--output=pcent", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return float(out.splitlines()[-1].strip().rstrip("%"))


@pytest.mark.parametrize("where", ["tmp", "/", "/work"])
def test_disk_reports_utilisation_as_df_does(where: str, tmp_path: Path) -> None:
    path = tmp_path if where == "tmp" else Path(where)
    if not path.exists():
        pytest.skip(f"{path} does not exist here")
    result = checks.disk(path, warn=100, fail=100)()
    assert abs(result.observed_value - df_percent(path)) <= 1.0  # df rounds up


def test_a_filesystem_of_no_blocks_fails_clearly() -> None:
    result = checks.disk("/proc")()
    assert result.status == "fail"
    assert result.output == "the filesystem reports no blocks"


untyped: Any = checks  # to pass what the annotations forbid


@pytest.mark.parametrize(
    ("make", "error", "option"),
    [
        (lambda: untyped.memory(warn_mib=500, fail_mib=100), ValueError, "warn_mib"),
        (lambda: untyped.memory(warn_mib="1"), TypeError, "warn_mib"),
        (lambda: untyped.event_loop_lag(warn=1, fail=0.1), ValueError, "warn"),
        (lambda: untyped.event_loop_lag(sample=-1), ValueError, "sample"),
        (lambda: untyped.disk(warn=95, fail=90), ValueError, "warn"),
        (lambda: untyped.disk(warn="90"), TypeError, "warn"),
        (lambda: untyped.tcp("localhost", "x"), TypeError, "port"),
        (lambda: untyped.tcp("localhost", 0), ValueError, "port"),
        (lambda: untyped.tcp("localhost", 65536), ValueError, "port"),
        (lambda: untyped.tcp("localhost", True), TypeError, "port"),
        (lambda: untyped.tcp("localhost", 80, timeout=0), ValueError, "timeout"),
        (lambda: untyped.tcp(1, 80), TypeError, "host"),
        (lambda: untyped.postgres(pg_dsn(PG), timeout="1"), TypeError, "timeout"),
        (lambda: untyped.amqp("amqp://127.0.0.1/%2F", timeout=-1), ValueError, "timeout"),
    ],
)
def test_wrong_options_are_refused_at_once_naming_the_option(
    make: Callable[[], Any], error: type[Exception], option: str
) -> None:
    with pytest.raises(error, match=rf"^{option} "):
        make()
