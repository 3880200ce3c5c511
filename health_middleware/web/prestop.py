"""The opt-in pre-stop endpoint for Kubernetes ``preStop.httpGet``: with the right
bearer token it starts the drain, then answers after a delay, so the pod leaves the
load balancers before the server stops accepting connections."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field

import orjson

from health_middleware.config.validation import seconds
from health_middleware.web.response import Prepared, prepare

_TOKEN = re.compile(r"[\x21-\x7e]{16,}")
_JSON = "application/health+json"


@dataclass(frozen=True, slots=True)
class Prestop:
    path: str
    token: str = field(repr=False)
    delay: float
    done: Prepared = field(init=False, repr=False)
    refused: Prepared = field(init=False, repr=False)
    not_allowed: Prepared = field(init=False, repr=False)

    def __post_init__(self) -> None:
        valid_token(self.token, "pre-stop token")
        object.__setattr__(self, "delay", float(seconds("pre-stop delay", self.delay)))
        done = prepare(200, _JSON, orjson.dumps({"status": "pass", "output": "drained"}))
        refused = prepare(
            401,
            _JSON,
            orjson.dumps({"status": "fail", "output": "unauthorized"}),
            [("www-authenticate", "Bearer")],
        )
        not_allowed = prepare(
            405, "text/plain; charset=utf-8", b"method not allowed\n", [("allow", "GET, POST")]
        )
        object.__setattr__(self, "done", done)
        object.__setattr__(self, "refused", refused)
        object.__setattr__(self, "not_allowed", not_allowed)

    def authorised(self, authorization: bytes | None) -> bool:
        return bearer_matches(authorization, self.token.encode("ascii"))


def valid_token(token: object, what: str) -> str:
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise ValueError(f"the {what} must be at least 16 printable ASCII characters, no spaces")
    return token


def bearer_matches(authorization: bytes | None, token: bytes) -> bool:
    """Whether an ``Authorization`` header is ``Bearer <token>``: the scheme in any
    case (RFC 9110), the token compared in constant time, so a wrong token takes as
    long, and gets as little, as none."""
    scheme, _, credentials = (authorization or b"").strip().partition(b" ")
    matches = hmac.compare_digest(credentials.strip(), token)
    return matches and scheme.lower() == b"bearer"
