"""``python -m health_middleware probe URL``: a health check client for container
images without curl. Standard library only. Exit 0 on 2xx/3xx, 1 otherwise."""

from __future__ import annotations

import http.client
import socket
import sys
import urllib.parse

HEALTHY, UNHEALTHY = 0, 1


def probe(url: str, timeout: float) -> tuple[int, str]:
    """Return ``(exit_code, reason)`` for one GET of ``url``; never raises for a
    network problem. Redirects are not followed: a 3xx counts as healthy."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", target, headers={"User-Agent": "health-middleware-probe"})
        response = connection.getresponse()
        response.read(65536)
    except (OSError, http.client.HTTPException) as exc:
        kind = "timed out" if isinstance(exc, socket.timeout | TimeoutError) else type(exc).__name__
        return UNHEALTHY, f"no answer from {url}: {kind}"
    finally:
        connection.close()
    code = HEALTHY if 200 <= response.status < 400 else UNHEALTHY
    return code, f"{response.status} {response.reason}"


def run(url: str, timeout: float) -> int:
    code, reason = probe(url, timeout)
    print(reason, file=sys.stdout if code == HEALTHY else sys.stderr)
    return code
