"""The network: TCP connections, DNS names and TLS certificates."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
import time

from health_middleware.checks._common import (
    Check,
    closing_stream,
    elapsed,
    host_name,
    ms,
    need,
    port_number,
    text,
    typed,
)
from health_middleware.config.callables import makes_check
from health_middleware.config.validation import positive, seconds
from health_middleware.engine.stalls import within
from health_middleware.model.result import CheckResult


@makes_check("checks.tcp(host, port)")
def tcp(host: str, port: int, *, timeout: float = 1.0) -> Check:
    """A TCP connection to ``host:port`` opens (then closes).

    Args:
        host: The host name or address, without a port (an IPv6 address bare,
            without brackets).
        port: The port.
        timeout: Seconds the connection may take to open.

    Returns:
        An async check whose observed value is the time to connect
            (``responseTime``), in ms.
    """
    host, port = host_name("host", host), port_number(port)
    timeout = seconds("timeout", timeout)

    async def check() -> CheckResult:
        started = time.perf_counter()
        async with within(timeout):
            _, writer = await asyncio.open_connection(host, port)
        elapsed = ms(started)
        writer.close()
        try:
            async with within(timeout):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            pass
        return CheckResult(observed_value=elapsed, observed_unit="ms")

    return typed(check, "system")


def _address(name: str, value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    given = text(name, value)
    try:
        return ipaddress.ip_address(given)
    except ValueError:
        raise ValueError(f"{name} must be an IP address, got {value!r}") from None


@makes_check("checks.dns(name)")
def dns(
    name: str,
    *,
    expect: str | None = None,
    rdtype: str = "A",
    nameserver: str | None = None,
    port: int = 53,
    tcp: bool = False,
    timeout: float = 1.0,
) -> Check:
    """A DNS name resolves, with dnspython's async resolver (the ``dns`` extra).

    Args:
        name: The domain name to resolve.
        expect: An IP address the answer must include (with ``rdtype`` ``A`` or
            ``AAAA``, of the same family); ``None``: any answer passes.
        rdtype: The record type to ask for, such as ``A``, ``AAAA`` or ``MX``.
        nameserver: The IP address of the nameserver to ask; ``None``: the
            system's nameservers.
        port: The nameserver's port.
        tcp: Ask over TCP rather than UDP.
        timeout: Seconds the resolution may take.

    Returns:
        An async check whose observed value is the time to resolve
            (``responseTime``), in ms.
    """
    resolver_module = need("dns.asyncresolver", "dns")
    exception_module = need("dns.exception", "dns")
    rdatatype = need("dns.rdatatype", "dns")
    try:
        need("dns.name", "dns").from_text(text("name", name))
    except exception_module.DNSException as exc:
        raise ValueError(f"name must be a domain name ({type(exc).__name__})") from None
    try:
        kind = rdatatype.from_text(text("rdtype", rdtype))
    except (exception_module.DNSException, ValueError):
        raise ValueError(f"rdtype must be a record type such as A or MX, got {rdtype!r}") from None
    port, timeout = port_number(port), seconds("timeout", timeout)
    if expect is not None:
        family = {rdatatype.A: 4, rdatatype.AAAA: 6}.get(kind)
        if family is None:
            raise ValueError("expect is an address: it needs rdtype A or AAAA")
        address = _address("expect", expect)
        if address.version != family:
            raise ValueError(f"expect must be an IPv{family} address for rdtype {rdtype}")
        expect = str(address)
    if nameserver is not None:
        nameserver = str(_address("nameserver", nameserver))
    if not isinstance(tcp, bool):
        raise TypeError("tcp must be True or False")

    async def check() -> CheckResult:
        resolver = resolver_module.Resolver(configure=nameserver is None)
        if nameserver is not None:
            resolver.nameservers = [nameserver]
        resolver.port = port
        resolver.timeout = resolver.lifetime = timeout
        started = time.perf_counter()
        try:
            answer = await resolver.resolve(name, kind, tcp=tcp, lifetime=timeout)
        except exception_module.DNSException as exc:
            return CheckResult(
                "fail",
                observed_value=ms(started),
                observed_unit="ms",
                output=f"DNS: {type(exc).__name__}",
            )
        result = elapsed(started)
        found = {record.to_text() for record in answer}
        if expect is not None and expect not in found:
            return CheckResult(
                "fail",
                observed_value=result.observed_value,
                observed_unit="ms",
                output=f"{name} did not resolve to {expect}",
            )
        return result

    return typed(check, "system")


@makes_check("checks.tls_certificate(host)")
def tls_certificate(
    host: str,
    port: int = 443,
    *,
    warn_days: float = 14.0,
    fail_days: float = 7.0,
    server_hostname: str | None = None,
    cafile: str | os.PathLike[str] | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 2.0,
) -> Check:
    """The days until the certificate served at ``host:port`` expires.

    The chain and the name must verify (against the system's CAs, ``cafile`` or your
    ``context``); a certificate that does not fails the check, its ``output`` saying
    why.

    Args:
        host: The host name or address to connect to, without a port.
        port: The TLS port.
        warn_days: The check warns at or below this many days left.
        fail_days: The check fails at or below this many days left; not above
            ``warn_days``.
        server_hostname: The name to ask for (SNI) and verify; ``None``: ``host``.
        cafile: A file of CA certificates (PEM) to verify against instead of the
            system's; an alternative to ``context``.
        context: Your ``ssl.SSLContext``, which must verify certificates; an
            alternative to ``cafile``.
        timeout: Seconds to connect and complete the handshake.

    Returns:
        An async check whose observed value is the days left (unit ``days``).
    """
    host, port = host_name("host", host), port_number(port)
    timeout = seconds("timeout", timeout)
    warn_days, fail_days = (
        positive("warn_days", warn_days, "days"),
        positive("fail_days", fail_days, "days"),
    )
    if fail_days > warn_days:
        raise ValueError("fail_days must not be above warn_days")
    if context is not None and cafile is not None:
        raise ValueError("cafile and context are alternatives: give one")
    if context is not None and not isinstance(context, ssl.SSLContext):
        raise TypeError("context must be an ssl.SSLContext")
    if context is not None and context.verify_mode == ssl.CERT_NONE:
        raise ValueError(
            "context must verify the certificate (verify_mode CERT_REQUIRED): "
            "the check reads the certificate it verified"
        )
    tls = context or ssl.create_default_context(
        cafile=None if cafile is None else os.fspath(cafile)
    )
    name = host if server_hostname is None else host_name("server_hostname", server_hostname)

    async def check() -> CheckResult:
        try:
            async with (
                within(timeout),
                closing_stream(
                    host, port, ssl=tls, server_hostname=name, ssl_handshake_timeout=timeout
                ) as (_, writer),
            ):
                certificate = writer.get_extra_info("peercert")
        except ssl.SSLCertVerificationError as exc:
            return CheckResult("fail", output=f"certificate does not verify: {exc.verify_message}")
        if not certificate or "notAfter" not in certificate:
            return CheckResult("fail", output="the server presented no certificate")
        expires = ssl.cert_time_to_seconds(certificate["notAfter"])
        days = round((expires - time.time()) / 86400.0, 2)
        status = "fail" if days <= fail_days else "warn" if days <= warn_days else "pass"
        output = (
            None
            if status == "pass"
            else (
                "the certificate has expired"
                if days <= 0
                else f"the certificate expires in {days:.0f} days"
            )
        )
        return CheckResult(status, observed_value=days, observed_unit="days", output=output)

    return typed(check, "system")
