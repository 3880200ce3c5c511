"""The checks of issue 18 against real servers on this machine, through real outages.

As in tests/test_checks.py, a fault-injecting proxy sits between each check and its
server: cut, the check fails within its timeout; healed, it passes within an interval;
black-holed (accepts, never answers), each run fails by its own timeout with no growth
in threads, asyncio tasks or sockets, and, where the server can tell (MariaDB's
processlist, memcached's ``curr_connections``), no growth in its connections. NATS
here has no monitoring port (``/connz``) and Mosquitto none that a test can read
without a client of its own, so theirs is the client side only.

The black hole runs 100 times where a run is cheap and 20 times for Celery (its
control connection's set-up is the slow part), with timeouts of 0.05 to 0.2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from health_middleware import checks
from tests.faultproxy import fault_proxy
from tests.support import (
    MARIADB,
    black_hole_runs,
    celery_worker,
    cut_then_heal,
    daemon,
    debian_tool,
    free_port,
    mariadb_connections,
    run_check,
    service,
)

pytestmark = pytest.mark.server

NATS, MOSQUITTO, REDIS = 4222, 1883, 6379
CELERY_DB = 7  # a Redis database of the tests' own for Celery's broker
OUTAGE_INTERVAL, OUTAGE_TIMEOUT = 0.2, 0.5
untyped: Any = checks  # to pass what the annotations forbid


# -- the servers ----------------------------------------------------------------------


def memcached_stat(port: int, name: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            data += s.recv(65536)
    for line in data.decode().splitlines():
        parts = line.split()
        if parts[:2] == ["STAT", name]:
            return int(parts[2])
    raise AssertionError(f"memcached has no stat {name}")


@pytest.fixture(scope="module")
def memcached_port() -> Iterator[int]:
    binary = debian_tool("memcached", "memcached")
    port = free_port()
    args = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "nobody", "-m", "16"]
    with daemon(args, port):
        yield port


@pytest.fixture(scope="module")
def dnsmasq_port() -> Iterator[int]:
    binary = debian_tool("dnsmasq", "dnsmasq-base")
    port = free_port()
    args = [
        binary,
        "--no-daemon",
        f"--port={port}",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--conf-file=/dev/null",
        "--pid-file=",
        "--address=/health.test/127.0.0.7",
    ]
    with daemon(args, port):
        yield port


@pytest.fixture(scope="module")
def celery_app() -> Iterator[Any]:
    """The tests' Celery app, with a real worker subprocess on the Redis broker."""
    service("Redis", REDIS)
    with celery_worker(f"redis://127.0.0.1:{REDIS}/{CELERY_DB}") as app:
        yield app


@pytest.fixture(scope="module")
def grpc_health() -> Iterator[tuple[int, Any]]:
    """A real grpcio server with the standard health servicer: (its port, the servicer)."""
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("orders", health_pb2.HealthCheckResponse.SERVING)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port, servicer
    finally:
        server.stop(None).wait(5)


@pytest.fixture(scope="module")
def smtp_port() -> Iterator[int]:
    """A real SMTP server (aiosmtpd) offering STARTTLS with a certificate of the tests."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    port = free_port()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    CERTS.leaf.configure_cert(tls)
    controller = Controller(Sink(), hostname="127.0.0.1", port=port, tls_context=tls)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


class Certs:
    """A CA made for the tests, and its leaf certificates for 127.0.0.1."""

    def __init__(self) -> None:
        import trustme

        self.ca = trustme.CA()
        self.leaf = self.ca.issue_cert("127.0.0.1", "localhost")

    def client(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def expiring_in(self, days: float) -> Any:
        now = datetime.datetime.now(datetime.UTC)
        return self.ca.issue_cert(
            "127.0.0.1",
            not_before=now - datetime.timedelta(days=30),
            not_after=now + datetime.timedelta(days=days),
        )


CERTS = Certs()


@contextlib.contextmanager
def tls_server(leaf: Any) -> Iterator[int]:
    """A TLS server on its own thread serving ``leaf``; it reads until the peer closes."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    port = free_port()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(65536):
                pass
        writer.transport.abort()

    def serve() -> None:
        server = loop.run_until_complete(
            asyncio.start_server(handle, "127.0.0.1", port, ssl=context)
        )
        started.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=serve, name="tls-server", daemon=True)
    thread.start()
    assert started.wait(5)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@contextlib.contextmanager
def udp_black_hole() -> Iterator[int]:
    """A UDP socket that takes every datagram and never answers: its port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind(("127.0.0.1", 0))
        yield hole.getsockname()[1]


# -- each check, made against a port: (port, timeout) -> check ------------------------

Factory = Callable[[int, float], Any]


def mysql_url(port: int) -> str:
    return f"mysql://root:@127.0.0.1:{port}/test"


def celery_through(port: int, timeout: float) -> Any:
    """The check on a Celery app of its own whose broker is reached at ``port``."""
    from celery import Celery

    app = Celery("through", broker=f"redis://127.0.0.1:{port}/{CELERY_DB}")
    return checks.celery(app, timeout=timeout)


def dns_over_tcp(port: int, timeout: float) -> Any:
    return checks.dns("health.test", nameserver="127.0.0.1", port=port, tcp=True, timeout=timeout)


def tls_check(port: int, timeout: float) -> Any:
    context = CERTS.client()
    return checks.tls_certificate("127.0.0.1", port, context=context, timeout=timeout)


FACTORIES: dict[str, Factory] = {
    "mysql": lambda p, t: checks.mysql(mysql_url(p), timeout=t),
    "memcached": lambda p, t: checks.memcached("127.0.0.1", p, timeout=t),
    "nats": lambda p, t: checks.nats(f"nats://127.0.0.1:{p}", timeout=t),
    "nats-jetstream": lambda p, t: checks.nats(f"nats://127.0.0.1:{p}", timeout=t, jetstream=True),
    "mqtt": lambda p, t: checks.mqtt("127.0.0.1", p, timeout=t),
    "celery": celery_through,
    "grpc": lambda p, t: checks.grpc(f"127.0.0.1:{p}", "orders", timeout=t),
    "tls_certificate": tls_check,
    "smtp": lambda p, t: checks.smtp("127.0.0.1", p, timeout=t),
    "dns-tcp": dns_over_tcp,
}
# The black hole's runs: 20 for Celery, whose broker connection is slow to set up.
RUNS = {name: 100 for name in FACTORIES} | {"celery": 20}


def upstream(request: pytest.FixtureRequest, name: str) -> int:
    """The port of the real server behind ``name``'s check (started if the test owns it)."""
    services = {"mysql": ("MariaDB", MARIADB), "mqtt": ("Mosquitto", MOSQUITTO)}
    services |= {"nats": ("NATS", NATS), "nats-jetstream": ("NATS", NATS)}
    if name in services:
        return service(*services[name])
    if name == "celery":
        request.getfixturevalue("celery_app")  # a worker must be there to answer
        return REDIS
    fixture = {
        "memcached": "memcached_port",
        "grpc": "grpc_health",
        "tls_certificate": "tls_port",
        "smtp": "smtp_port",
        "dns-tcp": "dnsmasq_port",
    }[name]
    value = request.getfixturevalue(fixture)
    return int(value[0] if isinstance(value, tuple) else value)


@pytest.fixture(scope="module")
def tls_port() -> Iterator[int]:
    with tls_server(CERTS.leaf) as port:
        yield port


# -- every new check: against the real server, through cut, heal and a black hole --


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_passes_against_the_real_server(name: str, request: pytest.FixtureRequest) -> None:
    check = FACTORIES[name](upstream(request, name), 2.0)
    assert check.scope == "instance"
    assert check.component_type in ("datastore", "component", "system")
    result = run_check(check)
    assert result.status == "pass", result
    assert result.observed_value >= 0


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_cut_fails_within_the_timeout_and_heal_passes_within_an_interval(
    name: str, request: pytest.FixtureRequest
) -> None:
    with fault_proxy(upstream(request, name)) as proxy:
        check = FACTORIES[name](proxy.port, OUTAGE_TIMEOUT / 2)
        cut_then_heal(proxy, check, OUTAGE_INTERVAL, OUTAGE_TIMEOUT)


BLACKHOLE_TIMEOUT = 0.05
SERVER_SIDE: dict[str, Callable[[int], int]] = {
    "mysql": lambda _: mariadb_connections(),
    "memcached": lambda port: memcached_stat(port, "curr_connections"),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_a_black_hole_fails_by_timeout_without_leaking(
    name: str, request: pytest.FixtureRequest
) -> None:
    port = upstream(request, name)
    timeout = 0.2 if name == "celery" else BLACKHOLE_TIMEOUT
    counter = SERVER_SIDE.get(name)
    before = counter(port) if counter else 0
    with fault_proxy(port) as proxy:
        check = FACTORIES[name](proxy.port, timeout)
        proxy.blackhole()
        black_hole_runs(check, RUNS[name], timeout)
    if counter:
        deadline = time.monotonic() + 5  # the server may take a moment to reap one
        while (after := counter(port)) > before:
            assert time.monotonic() < deadline, f"{before} connections before, {after} after"
            time.sleep(0.05)


# -- what each check tells apart -------------------------------------------------------


def test_grpc_fails_a_service_that_is_not_serving(grpc_health: tuple[int, Any]) -> None:
    from grpc_health.v1 import health_pb2

    port, servicer = grpc_health
    target = f"127.0.0.1:{port}"
    assert run_check(checks.grpc(target)).status == "pass"  # the whole server
    servicer.set("orders", health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        result = run_check(checks.grpc(target, "orders"))
        assert (result.status, result.output) == ("fail", "NOT_SERVING")
    finally:
        servicer.set("orders", health_pb2.HealthCheckResponse.SERVING)
    unknown = run_check(checks.grpc(target, "nobody"))
    assert (unknown.status, unknown.output) == ("fail", "gRPC NOT_FOUND")

    async def with_a_channel_of_ours() -> str:
        import grpc

        async with grpc.aio.insecure_channel(target) as channel:
            return str((await checks.grpc(channel, "orders")()).status)

    assert asyncio.run(with_a_channel_of_ours()) == "pass"


@pytest.mark.parametrize(
    ("days", "status", "output"),
    [
        (365, "pass", None),
        (10, "warn", "the certificate expires in 10 days"),
        (3, "fail", "the certificate expires in 3 days"),
    ],
)
def test_tls_certificate_grades_the_days_left(days: int, status: str, output: Any) -> None:
    with tls_server(CERTS.expiring_in(days)) as port:
        result = run_check(checks.tls_certificate("127.0.0.1", port, context=CERTS.client()))
    assert (result.status, result.output, result.observed_unit) == (status, output, "days")
    assert days - 1 < result.observed_value <= days


def test_tls_certificate_fails_a_chain_that_does_not_verify(tmp_path: Path) -> None:
    cafile = tmp_path / "ca.pem"
    CERTS.ca.cert_pem.write_to_path(str(cafile))
    with tls_server(CERTS.expiring_in(-1)) as expired, tls_server(CERTS.leaf) as good:
        assert run_check(checks.tls_certificate("127.0.0.1", good, cafile=cafile)).status == "pass"
        stranger = run_check(checks.tls_certificate("127.0.0.1", good))  # the system's CAs
        assert stranger.status == "fail"
        assert stranger.output.startswith("certificate does not verify: unable to get local")
        late = run_check(checks.tls_certificate("127.0.0.1", expired, cafile=cafile))
        assert (late.status, late.output) == (
            "fail",
            "certificate does not verify: certificate has expired",
        )
        misnamed = checks.tls_certificate(
            "127.0.0.1", good, cafile=cafile, server_hostname="x.test"
        )
        assert run_check(misnamed).output.startswith("certificate does not verify: Hostname")


def test_dns_resolves_over_udp_to_the_expected_address(dnsmasq_port: int) -> None:
    def dns(name: str, **options: Any) -> Any:
        return run_check(checks.dns(name, nameserver="127.0.0.1", port=dnsmasq_port, **options))

    assert dns("health.test").status == "pass"
    assert dns("health.test", expect="127.0.0.7").status == "pass"
    wrong = dns("health.test", expect="127.0.0.8")
    assert (wrong.status, wrong.output) == ("fail", "health.test did not resolve to 127.0.0.8")
    missing = dns("nothing.invalid")
    assert missing.status == "fail"
    assert missing.output.startswith("DNS: ")


def test_dns_against_a_udp_black_hole_fails_by_timeout_without_leaking() -> None:
    with udp_black_hole() as port:
        check = checks.dns("health.test", nameserver="127.0.0.1", port=port, timeout=0.05)
        black_hole_runs(check, 100, 0.05)
        assert run_check(check).output == "DNS: LifetimeTimeout"


def test_celery_counts_the_workers_that_answer(celery_app: Any) -> None:
    from celery import Celery

    one = run_check(checks.celery(celery_app, timeout=1.0))
    assert (one.status, one.observed_value, one.observed_unit) == ("pass", 1, "workers")
    two = run_check(checks.celery(celery_app, min_workers=2, timeout=1.0))
    assert (two.status, two.observed_value) == ("fail", 1)
    assert two.output == "1 of at least 2 workers answered"
    nobody = Celery("nobody", broker=f"redis://127.0.0.1:{REDIS}/{CELERY_DB + 1}")
    none = run_check(checks.celery(nobody, timeout=0.5))
    assert (none.status, none.observed_value) == ("fail", 0)


def test_smtp_starttls_verifies_the_servers_certificate(smtp_port: int) -> None:
    trusted = checks.smtp("127.0.0.1", smtp_port, starttls=True, context=CERTS.client())
    assert run_check(trusted).status == "pass"
    with pytest.raises(ssl.SSLCertVerificationError):  # the system's CAs know not ours
        run_check(checks.smtp("127.0.0.1", smtp_port, starttls=True))


def test_clients_and_pools_of_the_users() -> None:
    import aiomysql
    import nats as nats_client

    service("MariaDB", MARIADB)
    service("NATS", NATS)

    async def scenario() -> list[str]:
        pool = await aiomysql.create_pool(
            host="127.0.0.1", port=MARIADB, user="root", password="", db="test", maxsize=1
        )
        try:
            first = await checks.mysql(pool)()
        finally:
            pool.close()
            await pool.wait_closed()
        connection = await nats_client.connect(f"nats://127.0.0.1:{NATS}")
        try:
            second = await checks.nats(connection, jetstream=True)()
        finally:
            await connection.close()
        return [first.status, second.status]

    assert asyncio.run(scenario()) == ["pass", "pass"]


def test_a_refused_mqtt_session_says_why() -> None:
    service("Mosquitto", MOSQUITTO)
    # A broker that refuses the session: answer CONNECT with CONNACK "not authorized".
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))
    refusing.listen()

    def answer() -> None:
        connection, _ = refusing.accept()
        with connection:
            connection.recv(1024)
            connection.sendall(b"\x20\x02\x00\x05")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    with refusing:
        result = run_check(checks.mqtt("127.0.0.1", refusing.getsockname()[1], timeout=2))
    thread.join(5)
    assert (result.status, result.output) == ("fail", "connection refused: not authorized")
    with_login = checks.mqtt("127.0.0.1", MOSQUITTO, username="u", password="p")
    assert run_check(with_login).status in ("pass", "fail")  # what the broker allows


SECRET = "s3cr3t-pa55"


@pytest.mark.parametrize(
    "make",
    [
        lambda: checks.mysql(f"mysql://root:{SECRET}@127.0.0.1:{MARIADB}/test", timeout=2),
        lambda: checks.nats(f"nats://u:{SECRET}@127.0.0.1:{NATS}", timeout=2),
        lambda: checks.redis(f"redis://u:{SECRET}@127.0.0.1:{REDIS}/0", timeout=2),
        lambda: checks.http(f"http://u:{SECRET}@127.0.0.1:1/", timeout=2),
        lambda: checks.amqp(f"amqp://guest:{SECRET}@127.0.0.1:5672/%2F", timeout=2),
        lambda: checks.mqtt("127.0.0.1", MOSQUITTO, username="u", password=SECRET),
    ],
)
def test_no_secret_reaches_the_output_or_the_error(make: Callable[[], Any]) -> None:
    """A wrong password or a refused connection: neither ``output`` nor the message of
    what the check raises (published with ``expose_errors``) carries the password."""
    try:
        said = str(run_check(make()).output)
    except Exception as exc:
        said = f"{exc!s} {exc!r}"
    assert SECRET not in said


def unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@pytest.mark.parametrize(
    ("make", "error", "option"),
    [
        (lambda: untyped.mysql("postgresql://x/y"), ValueError, "url"),
        (lambda: untyped.mysql(42), TypeError, "target"),
        (lambda: untyped.mysql("mysql://h/d", timeout=0), ValueError, "timeout"),
        (lambda: untyped.memcached("h", 0), ValueError, "port"),
        (lambda: untyped.memcached("h", "11211"), TypeError, "port"),
        (lambda: untyped.nats(42), TypeError, "target"),
        (lambda: untyped.nats("nats://h", jetstream="yes"), TypeError, "jetstream"),
        (lambda: untyped.mqtt("h", 70000), ValueError, "port"),
        (lambda: untyped.mqtt("h", password="p"), ValueError, "password"),
        (lambda: untyped.celery(object()), TypeError, "app"),
        (lambda: untyped.grpc("h:1", timeout=-1), ValueError, "timeout"),
        (lambda: untyped.grpc("h:1", 5), TypeError, "service"),
        (lambda: untyped.tls_certificate("h", warn_days=3, fail_days=7), ValueError, "fail_days"),
        (lambda: untyped.tls_certificate("h", warn_days="14"), TypeError, "warn_days"),
        (lambda: untyped.tls_certificate("h", port=0), ValueError, "port"),
        (lambda: untyped.dns("h", expect="not-an-ip"), ValueError, "expect"),
        (lambda: untyped.dns("h", expect="::1"), ValueError, "expect"),
        (lambda: untyped.dns("h", expect="10.0.0.5", rdtype="AAAA"), ValueError, "expect"),
        (lambda: untyped.dns("h", expect="10.0.0.5", rdtype="MX"), ValueError, "expect"),
        (lambda: untyped.dns("h", rdtype="AAAAX"), ValueError, "rdtype"),
        (lambda: untyped.dns("a..b"), ValueError, "name"),
        (lambda: untyped.dns("h", nameserver="ns1"), ValueError, "nameserver"),
        (lambda: untyped.http("http://h/", expect=200), TypeError, "expect"),
        (lambda: untyped.http("http://h/", expect="200"), TypeError, "expect"),
        (lambda: untyped.http("http://h/", expect=b"200"), TypeError, "expect"),
        (lambda: untyped.http("http://h/", expect={"200"}), TypeError, "expect"),
        (lambda: untyped.http("not a url"), ValueError, "url"),
        (lambda: untyped.http("http:///path"), ValueError, "url"),
        (lambda: untyped.http("http://h:99999/"), ValueError, "url"),
        (lambda: untyped.http(123), TypeError, "url"),
        (lambda: untyped.http("http://h/", method=""), ValueError, "method"),
        (lambda: untyped.http("http://h/", method="GET /"), ValueError, "method"),
        (lambda: untyped.redis("htp://h"), ValueError, "url"),
        (lambda: untyped.redis(""), ValueError, "url"),
        (lambda: untyped.redis("redis://:6379/0"), ValueError, "url"),
        (lambda: untyped.redis("unix://"), ValueError, "url"),
        (lambda: untyped.nats(""), ValueError, "url"),
        (lambda: untyped.nats("http://127.0.0.1:4222"), ValueError, "url"),
        (lambda: untyped.nats("nats://"), ValueError, "url"),
        (lambda: untyped.amqp(123), TypeError, "url"),
        (lambda: untyped.amqp("http://h/"), ValueError, "url"),
        (lambda: untyped.disk(123), TypeError, "path"),
        (lambda: untyped.dbapi(lambda: None, query=123), TypeError, "query"),
        (lambda: untyped.sqlalchemy(None, query=123), TypeError, "query"),
        (lambda: untyped.tls_certificate("h", context=unverified()), ValueError, "context"),
        (lambda: untyped.smtp("h", context=ssl.create_default_context()), ValueError, "context"),
        (lambda: untyped.dns("h", port=99999), ValueError, "port"),
        (lambda: untyped.dns("h", timeout="1"), TypeError, "timeout"),
        (lambda: untyped.smtp("h", starttls=1), TypeError, "starttls"),
        (lambda: untyped.smtp("h", 25, timeout=0), ValueError, "timeout"),
    ],
)
def test_wrong_options_are_refused_at_once_naming_the_option(
    make: Callable[[], Any], error: type[Exception], option: str
) -> None:
    with pytest.raises(error, match=rf"^{option}" if option else None):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: checks.redis(f"htp://u:{SECRET}@h/0"),
        lambda: checks.redis(f"redis://u:{SECRET}@h:99999/0"),
        lambda: checks.nats(f"http://u:{SECRET}@h:4222"),
        lambda: checks.nats(f"nats://u:{SECRET}@:4222"),
        lambda: checks.http(f"ftp://u:{SECRET}@h/"),
        lambda: checks.amqp(f"amqp://guest:{SECRET}@/%2F"),
    ],
)
def test_a_refused_url_is_not_repeated(make: Callable[[], Any]) -> None:
    """A URL may hold a password: the error that refuses it names the option only."""
    with pytest.raises(ValueError, match=r"^url ") as caught:
        make()
    assert SECRET not in f"{caught.value!s} {caught.value!r}"


# -- targets that would fail every run ---------------------------------------------------


@pytest.mark.parametrize(
    ("make", "fix"),
    [
        (lambda: checks.postgres("localhost:5432"), "postgresql://user@host:5432/dbname"),
        (lambda: checks.postgres("host=db junk"), "host=db port=5432 dbname=app"),
        (lambda: checks.postgres("postgresql://h:port/db"), "as a number, e.g. 5432"),
        (lambda: checks.tcp("db:5432", 5432), "host='db', port=5432"),
        (lambda: checks.tcp("[::1]", 80), "without brackets"),
        (lambda: checks.tcp("http://db", 80), "not a URL"),
        (lambda: checks.memcached("cache:11211"), "host='cache', port=11211"),
        (lambda: checks.mqtt("broker:1883"), "host='broker', port=1883"),
        (lambda: checks.smtp("mail:587"), "host='mail', port=587"),
        (lambda: checks.tls_certificate("api:443"), "host='api', port=443"),
        (lambda: checks.tls_certificate("h", server_hostname="api:443"), "port="),
        (lambda: checks.grpc("payments"), "'payments:50051'"),
        (lambda: checks.grpc("dns:///payments"), "without a port gRPC would connect to 443"),
        (lambda: checks.grpc("payments:grpc"), "not a number"),
        (lambda: checks.disk("/no/such/volume"), "give an existing path"),
        (lambda: untyped.dbapi(lambda path: None), "lambda: sqlite3.connect(path"),
    ],
)
def test_a_target_that_would_fail_every_run_is_refused_naming_the_fix(
    make: Callable[[], Any], fix: str
) -> None:
    with pytest.raises((ValueError, TypeError)) as caught:
        make()
    assert fix in str(caught.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: checks.tcp("::1", 80),
        lambda: checks.tcp("fe80::1%eth0", 80),
        lambda: checks.memcached("cache.internal"),
        lambda: checks.grpc("[::1]:50051"),
        lambda: checks.grpc("dns:///payments:50051"),
        lambda: checks.grpc("dns://8.8.8.8/payments:50051"),
        lambda: checks.grpc("unix:/run/payments.sock"),
        lambda: checks.postgres(""),  # libpq's defaults and PG* variables
        lambda: checks.postgres("host=db,db2 port=5432,5433 dbname=app"),
        lambda: checks.disk("/"),
    ],
)
def test_the_right_targets_are_still_accepted(make: Callable[[], Any]) -> None:
    assert callable(make())


def test_a_refused_dsn_is_not_repeated() -> None:
    """A DSN may hold a password: psycopg's own message repeats it; ours does not."""
    for dsn in (f"postgresql://u:{SECRET}@h/db?bogus=1", f"host=h password={SECRET} x"):
        with pytest.raises(ValueError, match=r"^target ") as caught:
            checks.postgres(dsn)
        shown = "".join(traceback.format_exception(caught.value))  # as a log would show it
        assert SECRET not in shown


# -- peers that answer a byte at a time -------------------------------------------------

HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n"


@contextlib.contextmanager
def dripping(fast: bytes, slow: bytes, every: float) -> Iterator[int]:
    """A peer on 127.0.0.1 that reads a request, sends ``fast`` at once, then ``slow``
    one byte per ``every`` s: each read comes within httpx's per-phase timeouts."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    done = threading.Event()

    def answer(connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                connection.sendall(fast)
                for byte in slow:
                    if done.wait(every):
                        return
                    connection.sendall(bytes([byte]))
            except OSError:
                pass

    def serve() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=answer, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(5)
        listener.close()


DRIP_TIMEOUT = 0.3


@pytest.mark.parametrize("client", ["own", "async client"])
@pytest.mark.parametrize("part", ["head", "body"])
def test_http_bounds_the_whole_run_by_its_timeout(part: str, client: str) -> None:
    """A peer dripping its answer (each byte in time for httpx's per-phase timeouts)
    fails the run by the check's own timeout, however long the whole answer takes."""
    import httpx

    fast, slow = (b"", HEAD + b"x" * 20) if part == "head" else (HEAD, b"x" * 20)

    async def run(port: int) -> Any:
        if client == "own":
            return await checks.http(f"http://127.0.0.1:{port}/", timeout=DRIP_TIMEOUT)()
        async with httpx.AsyncClient() as mine:
            return await checks.http(
                f"http://127.0.0.1:{port}/", timeout=DRIP_TIMEOUT, client=mine
            )()

    with dripping(fast, slow, 0.05) as port:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            asyncio.run(run(port))
        assert time.monotonic() - started < DRIP_TIMEOUT + 0.5


def test_http_with_a_sync_client_fails_a_run_past_its_timeout() -> None:
    """httpx bounds each phase of a sync client's request, not the whole: the check
    reads the body as it comes, failing once past its timeout, and a head that took
    longer (each byte in time) fails when it ends, never passes."""
    import httpx

    with httpx.Client() as client:
        with dripping(HEAD, b"x" * 20, 0.05) as port:
            check = checks.http(f"http://127.0.0.1:{port}/", timeout=DRIP_TIMEOUT, client=client)
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                check()
            assert time.monotonic() - started < DRIP_TIMEOUT + 0.5
        with dripping(b"", HEAD, 0.02) as port:
            check = checks.http(f"http://127.0.0.1:{port}/", timeout=DRIP_TIMEOUT, client=client)
            with pytest.raises(TimeoutError):
                check()


def test_a_refused_nats_server_fails_at_once_saying_so() -> None:
    """nats-py's ``max_reconnect_attempts=0`` means "try forever": a refused server
    (the proxy cut, a closed port) must fail at once with the real kind, not by the
    timeout."""
    service("NATS", NATS)
    closed = free_port()
    with fault_proxy(NATS) as proxy:
        check = checks.nats(f"nats://127.0.0.1:{proxy.port}", timeout=2)
        assert run_check(check).status == "pass"
        proxy.cut()
        for target in (check, checks.nats(f"nats://127.0.0.1:{closed}", timeout=2)):
            started = time.monotonic()
            with pytest.raises(ConnectionRefusedError):
                run_check(target)
            assert time.monotonic() - started < 0.5
