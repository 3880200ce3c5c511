"""HTTP/1.x as the probe port speaks it: the standard library's parser run on a
request head already read whole (``Head``), the path a request target names, the one
rule the library leaves out (no whitespace before a header's colon), and an answer
encoded from a prepared response."""

from __future__ import annotations

import http.server
import io
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from health_middleware.web.response import Prepared


class Head(http.server.BaseHTTPRequestHandler):
    """The standard library's request parsing, on a head already read whole: no
    socket, no server; its error answers are written to ``wfile`` (a buffer)."""

    protocol_version = "HTTP/1.1"  # keep-alive by default for HTTP/1.1 requests

    def __init__(self, head: bytes) -> None:  # not the base's: nothing to serve
        line, _, rest = head.partition(b"\n")
        self.raw_requestline = line + b"\n"
        self.rfile = io.BytesIO(rest)
        self.out = io.BytesIO()  # what the library answers (an error, a 100 Continue)
        self.wfile = self.out
        self.client_address = ("", 0)
        self.close_connection = True

    def version_string(self) -> str:
        return "health_middleware"

    def log_message(self, format: str, *args: Any) -> None:  # the base's signature
        pass


def target(raw: str) -> str:
    """The path to look up: the query and fragment dropped, an absolute-form target's
    path taken, percent-escapes decoded (as ASGI ``path`` and WSGI ``PATH_INFO`` are)."""
    if not raw.startswith("/"):
        raw = urlsplit(raw).path or "/"
    return unquote(raw.partition("?")[0].partition("#")[0], errors="replace")


_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
# RFC 9110 section 7.2 (uri-host [":" port]): an IP literal, or a name of unreserved,
# percent-encoded and sub-delim characters (RFC 3986 section 3.2.2).
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(:[0-9]*)?", re.ASCII)
_LENGTH = re.compile(r"[0-9]+", re.ASCII)


def malformed_fields(head: bytes) -> bool:
    """Whether a header line of ``head`` is not ``name: value`` with a token for a
    name, nothing between the name and its colon, and no control character in the
    value (RFC 9112 section 5.1, RFC 9110 section 5.5: a server must answer 400). A
    line that starts with whitespace (obsolete line folding) is left to the library's
    parser."""
    for raw in head.split(b"\n")[1:]:
        line = raw.rstrip(b"\r")
        if not line or line[:1] in (b" ", b"\t"):
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name) or not _VALUE.fullmatch(value):
            return True
    return False


def valid_host(value: str) -> bool:
    """Whether a ``Host`` field's value is ``uri-host [":" port]``."""
    return _HOST.fullmatch(value.strip()) is not None


def valid_length(value: str) -> bool:
    """Whether a ``Content-Length`` is a number (ASCII digits: not "+0", not "²")."""
    return _LENGTH.fullmatch(value.strip()) is not None


def encode(response: Prepared, body: bytes, keep: bool, http10: bool) -> bytes:
    lines = [f"HTTP/1.1 {response.wsgi_status}"]
    lines += [f"{name}: {value}" for name, value in response.wsgi_headers]
    if not keep:
        lines.append("connection: close")
    elif http10:
        lines.append("connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
