"""A finished HTTP response, in the shapes ASGI and WSGI want."""

from __future__ import annotations

import http
from collections.abc import Iterable
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Prepared:
    """One finished response, in the shapes ASGI and WSGI want."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    wsgi_status: str
    wsgi_headers: tuple[tuple[str, str], ...]


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def prepare(
    status: int, content_type: str, body: bytes, extra: Iterable[tuple[str, str]] = ()
) -> Prepared:
    """The finished response (``head_of`` gives its HEAD twin)."""
    headers = (
        ("content-type", content_type),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
        *extra,
    )
    raw = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)
    line = f"{status} {_reason(status)}"
    return Prepared(status, raw, body, line, headers)


METHOD_NOT_ALLOWED = prepare(
    405, "text/plain; charset=utf-8", b"method not allowed\n", [("allow", "GET, HEAD")]
)


def head_of(response: Prepared) -> Prepared:
    """The HEAD twin of a GET response: the same status and headers, no body."""
    return replace(response, body=b"")
