"""Brokers and workers: AMQP (RabbitMQ), NATS, MQTT, Celery."""

from __future__ import annotations

import time

from health_middleware.check import seconds
from health_middleware.checks._common import Check, ms, need, typed
from health_middleware.result import CheckResult


def amqp(url: str, *, timeout: float = 2.0) -> Check:
    """An AMQP 0-9-1 broker (RabbitMQ) completes the connection handshake, with pika:
    a connection per run, closed. ``responseTime`` in ms."""
    pika = need("pika", "amqp")
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
            elapsed = ms(started)
        finally:
            connection.close()
        return CheckResult(observed_value=elapsed, observed_unit="ms")

    return typed(check, "component")
