"""Brokers and workers: AMQP (RabbitMQ), NATS, MQTT, Celery."""

from __future__ import annotations

import secrets
import ssl as _ssl
import time
from typing import Any

from health_middleware.checks._common import (
    Check,
    checked_url,
    closing_stream,
    elapsed,
    host_name,
    ms,
    need,
    port_number,
    typed,
    whole,
)
from health_middleware.config.callables import makes_check
from health_middleware.config.validation import seconds
from health_middleware.engine.stalls import within
from health_middleware.model.result import CheckResult


@makes_check("checks.amqp(url)")
def amqp(url: str, *, timeout: float = 2.0) -> Check:
    """An AMQP 0-9-1 broker (RabbitMQ) completes the connection handshake, with pika
    (the ``amqp`` extra); a connection per run, closed.

    Args:
        url: An ``amqp://`` or ``amqps://`` URL, as pika reads it
            (``amqp://user:password@host:5672/vhost``).
        timeout: Seconds for the socket and the handshake.

    Returns:
        A sync check whose observed value is the time to connect
            (``responseTime``), in ms.
    """
    pika = need("pika", "amqp")
    timeout = seconds("timeout", timeout)
    checked_url("url", url, ("amqp", "amqps"))
    parameters = pika.URLParameters(url)
    parameters.socket_timeout = timeout
    parameters.stack_timeout = timeout
    parameters.blocked_connection_timeout = timeout
    parameters.connection_attempts = 1

    def check() -> CheckResult:
        started = time.perf_counter()
        connection = pika.BlockingConnection(parameters)
        try:
            elapsed = ms(started)
        finally:
            connection.close()
        return CheckResult(observed_value=elapsed, observed_unit="ms")

    return typed(check, "component")


@makes_check("checks.nats(url)")
def nats(target: Any, *, timeout: float = 1.0, jetstream: bool = False) -> Check:
    """A NATS server answers a round trip (PING/PONG), with nats-py (the ``nats``
    extra).

    Args:
        target: A ``nats://`` URL (``tls://``, ``ws://`` and ``wss://`` too; a
            connection per run, closed), or your connected
            ``nats.aio.client.Client``.
        timeout: Seconds to connect and answer.
        jetstream: Also ask for JetStream's account info, so a server without
            JetStream, or whose JetStream does not answer, fails.

    Returns:
        An async check whose observed value is the round trip's ``responseTime``
            in ms.
    """
    client_module = need("nats.aio.client", "nats")
    timeout = seconds("timeout", timeout)
    if not isinstance(jetstream, bool):
        raise TypeError("jetstream must be True or False")
    if not isinstance(target, str | client_module.Client):
        raise TypeError("target must be a nats:// URL or a nats.aio.client.Client")
    if isinstance(target, str):
        checked_url("url", target, ("nats", "tls", "ws", "wss"))
    no_servers = need("nats.errors", "nats").NoServersError

    async def round_trip(connection: Any) -> None:
        await connection.flush(timeout=timeout)
        if jetstream:
            await connection.jetstream(timeout=timeout).account_info()

    async def check() -> CheckResult:
        started = time.perf_counter()
        if not isinstance(target, str):
            async with within(timeout):
                await round_trip(target)
            return elapsed(started)
        connection = client_module.Client()
        errors: list[Exception] = []

        async def keep(error: Exception) -> None:  # nats-py would log each one
            errors.append(error)

        try:
            async with within(timeout):
                try:
                    # max_reconnect_attempts=0 would mean "try forever" to nats-py: a
                    # refused server would wait out the timeout. 1 with no wait between
                    # tries gives up after two, saying why.
                    await connection.connect(
                        servers=[target],
                        connect_timeout=timeout,
                        allow_reconnect=False,
                        max_reconnect_attempts=1,
                        reconnect_time_wait=0,
                        error_cb=keep,
                    )
                except no_servers:
                    if errors:
                        raise errors[-1] from None
                    raise
                await round_trip(connection)
        finally:
            await _close_nats(connection, timeout)
        return elapsed(started)

    return typed(check, "component")


async def _close_nats(connection: Any, timeout: float) -> None:
    # nats-py before 2.15 raises AttributeError closing a client whose TCP connection
    # was never made (a refused server): its transport has no writer, so there is no
    # socket to close, and the refusal, not this, is what the run reports.
    try:
        async with within(timeout):
            await connection.close()
    except (TimeoutError, OSError, AttributeError):
        pass


_CONNACK_REFUSALS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


def _mqtt_string(value: str) -> bytes:
    data = value.encode()
    return len(data).to_bytes(2, "big") + data


def _mqtt_connect(client_id: str, username: str | None, password: str | None) -> bytes:
    """An MQTT 3.1.1 CONNECT packet with a clean session (every broker speaks 3.1.1)."""
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = _mqtt_string("MQTT") + bytes([0x04, flags]) + (60).to_bytes(2, "big")
    body += _mqtt_string(client_id)
    for field in (username, password):
        if field is not None:
            body += _mqtt_string(field)
    length, size = b"", len(body)
    while True:  # the remaining length, MQTT's variable-length integer
        size, digit = divmod(size, 128)
        length += bytes([digit | (0x80 if size else 0)])
        if not size:
            break
    return b"\x10" + length + body


@makes_check("checks.mqtt(host, port)")
def mqtt(
    host: str,
    port: int = 1883,
    *,
    timeout: float = 1.0,
    username: str | None = None,
    password: str | None = None,
    ssl: _ssl.SSLContext | None = None,
) -> Check:
    """An MQTT broker accepts a session (CONNECT, CONNACK) and answers a PINGREQ
    with a PINGRESP; the session then ends with DISCONNECT. The check speaks these
    few MQTT 3.1.1 packets itself (no driver needed): no client library exposes a
    ping round trip.

    Args:
        host: The broker's host name or address, without a port.
        port: The broker's port.
        timeout: Seconds to connect and answer.
        username: The user name to connect as; ``None``: none.
        password: The password, with ``username``.
        ssl: An ``ssl.SSLContext`` for MQTT over TLS; ``None``: plain TCP.

    Returns:
        An async check whose observed value is the round trip's ``responseTime``
            in ms.
    """
    host, port = host_name("host", host), port_number(port)
    timeout = seconds("timeout", timeout)
    for name, value in (("username", username), ("password", password)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a string")
    if password is not None and username is None:
        raise ValueError("password needs a username (MQTT 3.1.1)")
    if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
        raise TypeError("ssl must be an ssl.SSLContext")

    async def check() -> CheckResult:
        started = time.perf_counter()
        client_id = f"health-middleware-{secrets.token_hex(6)}"
        async with (
            within(timeout),
            closing_stream(host, port, ssl=ssl) as (
                reader,
                writer,
            ),
        ):
            writer.write(_mqtt_connect(client_id, username, password))
            connack = await reader.readexactly(4)
            if connack[:2] != b"\x20\x02":
                return CheckResult("fail", output="the broker gave an unexpected reply")
            if connack[3]:
                refusal = _CONNACK_REFUSALS.get(connack[3], "refused")
                return CheckResult("fail", output=f"connection refused: {refusal}")
            writer.write(b"\xc0\x00")  # PINGREQ
            if await reader.readexactly(2) != b"\xd0\x00":  # PINGRESP
                return CheckResult("fail", output="the broker gave an unexpected reply")
            result = elapsed(started)
            writer.write(b"\xe0\x00")  # DISCONNECT, so the broker drops no will
            await writer.drain()
        return result

    return typed(check, "component")


@makes_check("checks.celery(celery_app)")
def celery(app: Any, *, min_workers: int = 1, timeout: float = 1.0) -> Check:
    """At least ``min_workers`` Celery workers answer a ping (the ``celery``
    extra); a connection to the broker per run, closed.

    Args:
        app: Your ``celery.Celery`` application, configured with its broker.
        min_workers: How many workers must answer.
        timeout: Seconds the run may take: the wait for replies takes half of it (a
            ping always waits that long, for every worker to answer), each broker
            socket operation a quarter at most.

    Returns:
        A sync check whose observed value is how many workers answered (unit
            ``workers``).
    """
    celery_module = need("celery", "celery")
    if not isinstance(app, celery_module.Celery):
        raise TypeError("app must be a celery.Celery application")
    min_workers, timeout = whole("min_workers", min_workers, 1), seconds("timeout", timeout)
    replies_within, operation_within = timeout / 2, timeout / 4
    bounded = {
        "socket_timeout": operation_within,
        "socket_connect_timeout": operation_within,
        "max_retries": 0,
    }

    def check() -> CheckResult:
        connection = app.connection_for_write(
            connect_timeout=operation_within, transport_options=bounded, heartbeat=0
        )
        try:
            connection.ensure_connection(  # once, no back-off: the next run is the retry
                max_retries=1,
                interval_start=0,
                interval_step=0,
                interval_max=0,
                timeout=operation_within,
            )
            replies = app.control.ping(timeout=replies_within, connection=connection)
        finally:
            connection.release()
        workers = len(replies or ())
        output = None
        if workers < min_workers:
            output = f"{workers} of at least {min_workers} workers answered"
        return CheckResult(
            "pass" if output is None else "fail",
            observed_value=workers,
            observed_unit="workers",
            output=output,
        )

    return typed(check, "component")
