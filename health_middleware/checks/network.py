"""The network: TCP, HTTP, DNS, TLS certificates, SMTP and gRPC upstreams."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Container
from typing import Any

from health_middleware.check import seconds
from health_middleware.checks._common import Check, ms, need, port_number, text, typed
from health_middleware.result import CheckResult


def tcp(host: str, port: int, *, timeout: float = 1.0) -> Check:
    """A TCP connection to ``host:port`` opens (then closes): ``responseTime`` in ms."""
    host, port, timeout = text("host", host), port_number(port), seconds("timeout", timeout)

    async def check() -> CheckResult:
        started = time.perf_counter()
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
        elapsed = ms(started)
        writer.close()
        try:
            async with asyncio.timeout(timeout):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            pass
        return CheckResult(observed_value=elapsed, observed_unit="ms")

    return typed(check, "system")


def http(
    url: str,
    *,
    expect: Container[int] = range(200, 400),
    timeout: float = 2.0,
    method: str = "GET",
    client: Any = None,
) -> Check:
    """An HTTP request answered with a status in ``expect``: ``responseTime`` in ms.
    ``client``: your ``httpx.AsyncClient`` or ``httpx.Client``, else one per run."""
    httpx = need("httpx", "http")
    timeout = seconds("timeout", timeout)

    def grade(response: Any, started: float) -> CheckResult:
        elapsed = ms(started)
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

        return typed(check_sync, "system")
    if client is not None and not isinstance(client, httpx.AsyncClient):
        raise TypeError("client must be an httpx.AsyncClient or httpx.Client")

    async def check() -> CheckResult:
        started = time.perf_counter()
        if client is not None:
            return grade(await client.request(method, url, timeout=timeout), started)
        async with httpx.AsyncClient(timeout=timeout) as own:
            return grade(await own.request(method, url), started)

    return typed(check, "system")
