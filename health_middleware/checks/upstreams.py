"""Services upstream: HTTP, SMTP and gRPC servers answering their own protocols."""

from __future__ import annotations

import re
import ssl
import time
import urllib.parse
from collections.abc import Collection, Container
from typing import Any

from health_middleware.checks._common import (
    Check,
    checked_url,
    elapsed,
    host_name,
    ms,
    need,
    port_number,
    text,
    typed,
)
from health_middleware.config.callables import makes_check
from health_middleware.config.validation import seconds
from health_middleware.engine.stalls import within
from health_middleware.model.result import CheckResult

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _statuses(expect: object) -> Container[int]:
    """``expect``: a container of status codes (``status in expect`` must answer)."""
    if isinstance(expect, Container) and not isinstance(expect, str | bytes | bytearray):
        codes = expect if isinstance(expect, Collection) and not isinstance(expect, range) else ()
        try:
            200 in expect  # noqa: B015 - it raises for a container that cannot answer
        except Exception:
            pass
        else:
            if not any(isinstance(code, bool) or not isinstance(code, int) for code in codes):
                return expect
    raise TypeError(
        "expect must be a container of status codes such as range(200, 400) or "
        f"{{200, 204}}, got {type(expect).__name__}"
    )


@makes_check("checks.http(url)")
def http(
    url: str,
    *,
    expect: Container[int] = range(200, 400),
    timeout: float = 2.0,
    method: str = "GET",
    client: Any = None,
) -> Check:
    """An HTTP request is answered with an expected status, with httpx (the
    ``http`` extra).

    Args:
        url: An ``http://`` or ``https://`` URL; with a ``client`` that has a
            ``base_url``, a path is enough.
        expect: The statuses that pass: any container of ints, such as
            ``range(200, 400)`` or ``{200, 204}``.
        timeout: Seconds the whole run may take, the answer's body included (a peer
            that drips its answer fails by it).
        method: The HTTP method, such as ``GET`` or ``HEAD``.
        client: Your ``httpx.AsyncClient`` (async) or ``httpx.Client`` (sync), with
            its own settings; ``None``: a client per run, closed.

    Returns:
        A check whose observed value is the request's ``responseTime`` in ms; off
            ``expect``, it fails with the output ``HTTP <status>``.
    """
    httpx = need("httpx", "http")
    timeout, expect = seconds("timeout", timeout), _statuses(expect)
    if not _TOKEN.fullmatch(text("method", method)):
        raise ValueError("method must be an HTTP method such as GET or HEAD")
    if client is not None and not isinstance(client, httpx.AsyncClient | httpx.Client):
        raise TypeError("client must be an httpx.AsyncClient or httpx.Client")
    relative = client is not None and client.base_url.host and str(url).startswith("/")
    if not relative:  # a path is enough for a client of a base_url
        checked_url("url", url, ("http", "https"))

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
            # httpx bounds each phase, not the whole: the time is checked as each part
            # of the answer arrives, and a run past the timeout fails.
            started = time.perf_counter()
            with client.stream(method, url, timeout=timeout) as response:
                _in_time(started, timeout)
                for _ in response.iter_raw():
                    _in_time(started, timeout)
            return grade(response, started)

        return typed(check_sync, "system")

    async def check() -> CheckResult:
        started = time.perf_counter()
        async with within(timeout):
            if client is not None:
                response = await client.request(method, url, timeout=timeout)
            else:
                async with httpx.AsyncClient(timeout=timeout) as own:
                    response = await own.request(method, url)
        return grade(response, started)

    return typed(check, "system")


def _in_time(started: float, timeout: float) -> None:
    if time.perf_counter() - started > timeout:
        raise TimeoutError(f"no whole answer within the timeout of {timeout:g} s")


@makes_check("checks.smtp(host, port)")
def smtp(
    host: str,
    port: int = 25,
    *,
    starttls: bool = False,
    context: ssl.SSLContext | None = None,
    timeout: float = 2.0,
) -> Check:
    """An SMTP server answers EHLO and NOOP, with aiosmtplib (the ``smtp`` extra); a
    connection per run, ended with QUIT.

    Args:
        host: The server's host name or address, without a port.
        port: The server's port.
        starttls: Upgrade the connection with STARTTLS before NOOP; the certificate
            must verify.
        context: The ``ssl.SSLContext`` that verifies STARTTLS (with
            ``starttls=True``); ``None``: the system's CAs.
        timeout: Seconds the whole exchange may take.

    Returns:
        An async check whose observed value is the exchange's ``responseTime`` in ms.
    """
    aiosmtplib = need("aiosmtplib", "smtp")
    host, port = host_name("host", host), port_number(port)
    timeout = seconds("timeout", timeout)
    if not isinstance(starttls, bool):
        raise TypeError("starttls must be True or False")
    if context is not None and not isinstance(context, ssl.SSLContext):
        raise TypeError("context must be an ssl.SSLContext")
    if context is not None and not starttls:
        raise ValueError("context verifies STARTTLS: give starttls=True with it")

    async def check() -> CheckResult:
        started = time.perf_counter()
        client = aiosmtplib.SMTP(
            hostname=host, port=port, timeout=timeout, start_tls=False, tls_context=context
        )
        try:
            async with within(timeout):
                await client.connect()
                await client.ehlo()
                if starttls:
                    await client.starttls(tls_context=context)
                await client.noop()
                result = elapsed(started)
                await client.quit()
        finally:
            client.close()
        return result

    return typed(check, "system")


_GRPC_SERVING = 1


@makes_check("checks.grpc('host:port')")
def grpc(
    target: Any,
    service: str = "",
    *,
    credentials: Any = None,
    timeout: float = 1.0,
) -> Check:
    """A gRPC server's standard health service (``grpc.health.v1.Health/Check``)
    reports ``service`` as ``SERVING`` (the ``grpc`` extra); any other answer fails,
    its ``output`` naming the status.

    Args:
        target: ``"host:port"`` (the port is required: gRPC would take 443; a
            channel per run, closed) or your ``grpc.aio.Channel``.
        service: The service to ask about; ``""``: the server as a whole.
        credentials: ``grpc.ssl_channel_credentials(...)`` for TLS, with a
            ``"host:port"`` target; ``None``: a plain-text channel.
        timeout: Seconds the call may take, connecting included.

    Returns:
        An async check whose observed value is the call's ``responseTime`` in ms.
    """
    grpc_module = need("grpc", "grpc")
    health_pb2 = need("grpc_health.v1.health_pb2", "grpc")
    health_pb2_grpc = need("grpc_health.v1.health_pb2_grpc", "grpc")
    service, timeout = _optional_text("service", service), seconds("timeout", timeout)
    if not isinstance(target, str | grpc_module.aio.Channel):
        raise TypeError("target must be a 'host:port' string or a grpc.aio.Channel")
    if isinstance(target, str):
        _grpc_target(target)
    if credentials is not None and not isinstance(credentials, grpc_module.ChannelCredentials):
        raise TypeError("credentials must be grpc.ChannelCredentials")
    request = health_pb2.HealthCheckRequest(service=service)
    within_ms = max(1, round(timeout * 1000))
    # The check's channel keeps its connections to itself (from gRPC's global pool they
    # would outlive it), and gives up a connection attempt after its timeout (the
    # default, 20 s, left one socket a run stuck in a handshake with a silent peer).
    options = [
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.min_reconnect_backoff_ms", within_ms),
        ("grpc.initial_reconnect_backoff_ms", within_ms),
        ("grpc.max_reconnect_backoff_ms", within_ms),
    ]

    async def ask(channel: Any, started: float) -> CheckResult:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(request, timeout=timeout)
        except grpc_module.aio.AioRpcError as exc:
            return CheckResult(
                "fail",
                observed_value=ms(started),
                observed_unit="ms",
                output=f"gRPC {exc.code().name}",
            )
        if reply.status != _GRPC_SERVING:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            return CheckResult(
                "fail", observed_value=ms(started), observed_unit="ms", output=status
            )
        return elapsed(started)

    async def check() -> CheckResult:
        started = time.perf_counter()
        if not isinstance(target, str):
            return await ask(target, started)
        if credentials is None:
            channel = grpc_module.aio.insecure_channel(target, options)
        else:
            channel = grpc_module.aio.secure_channel(target, credentials, options)
        try:
            return await ask(channel, started)
        finally:
            await channel.close()

    return typed(check, "system")


# gRPC's name resolvers other than dns, whose targets name no host and port to check.
_GRPC_SCHEMES = ("unix", "unix-abstract", "vsock", "ipv4", "ipv6", "xds", "google-c2p")


def _grpc_target(target: str) -> None:
    """A channel target that names its port: gRPC would take a missing one as 443."""
    scheme, colon, rest = text("target", target).partition(":")
    if colon and scheme in _GRPC_SCHEMES:
        return
    address = rest if colon and scheme == "dns" else target
    if address.startswith("//"):  # dns://authority/host:port
        address = address[2:].partition("/")[2]
    try:
        parts = urllib.parse.urlsplit("//" + address)
        port = parts.port
    except ValueError:
        raise ValueError(f"target {target!r} has a port that is not a number") from None
    if not parts.hostname or port is None or parts.path or parts.query or parts.fragment:
        raise ValueError(
            f"target {target!r} must be 'host:port' (e.g. 'payments:50051', "
            "'[::1]:50051'): without a port gRPC would connect to 443"
        )


def _optional_text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    return value
