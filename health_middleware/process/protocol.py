"""HTTP/1.x as the probe port speaks it: the standard library's parser run on a
request head already read whole (``Head``), the path a request target names, the one
rule the library leaves out (no whitespace before a header's colon), and an answer
encoded from a prepared response."""

from __future__ import annotations

import http.server
import io
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


def space_before_colon(head: bytes) -> bool:
    """Whether a header line of ``head`` has whitespace between the field's name and
    its colon (RFC 9112 section 5.1: a server must answer 400). A line that starts with
    whitespace (obsolete line folding) is left to the library's parser."""
    for line in head.split(b"\n")[1:]:
        name, colon, _ = line.partition(b":")
        if colon and name[:1] not in (b" ", b"\t") and name != name.rstrip(b" \t"):
            return True
    return False


def encode(response: Prepared, body: bytes, keep: bool, http10: bool) -> bytes:
    lines = [f"HTTP/1.1 {response.wsgi_status}"]
    lines += [f"{name}: {value}" for name, value in response.wsgi_headers]
    if not keep:
        lines.append("connection: close")
    elif http10:
        lines.append("connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
