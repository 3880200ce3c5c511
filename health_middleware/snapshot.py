"""The snapshot: every endpoint's finished responses, replaced by one assignment.

Readers take ``health.snapshot`` once and use it; nothing in it is ever mutated.
"""

from __future__ import annotations

import http
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from health_middleware.check import CheckState
from health_middleware.endpoint import Endpoint
from health_middleware.formats import renderer
from health_middleware.report import Service, evaluate, stale


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
) -> tuple[Prepared, Prepared]:
    """Return the GET response and its HEAD twin (same headers, no body)."""
    headers = (
        ("content-type", content_type),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
        *extra,
    )
    raw = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)
    line = f"{status} {_reason(status)}"
    return (
        Prepared(status, raw, body, line, headers),
        Prepared(status, raw, b"", line, headers),
    )


METHOD_NOT_ALLOWED, _ = prepare(
    405, "text/plain; charset=utf-8", b"method not allowed\n", [("allow", "GET, HEAD")]
)


@dataclass(frozen=True, slots=True)
class Answers:
    get: Prepared
    head: Prepared
    stale_get: Prepared
    stale_head: Prepared


@dataclass(frozen=True, slots=True)
class Snapshot:
    answers: Mapping[str, Answers]
    valid_until: float  # time.monotonic(); past it, the stale answers apply


def build(
    endpoints: Iterable[Endpoint],
    states: Iterable[CheckState],
    *,
    draining: bool,
    service: Service,
    now: float,
    valid_until: float,
) -> Snapshot:
    states = tuple(states)
    answers: dict[str, Answers] = {}
    for endpoint in endpoints:
        render = renderer(endpoint.format)
        report = evaluate(endpoint, states, draining)
        get, head = prepare(
            endpoint.status_codes[report.status], *render(report, endpoint, service, now)
        )
        stale_get, stale_head = prepare(
            endpoint.status_codes["fail"], *render(stale(), endpoint, service, now)
        )
        entry = Answers(get, head, stale_get, stale_head)
        answers[endpoint.path] = entry
        if endpoint.path != "/":
            answers[endpoint.path + "/"] = entry
    return Snapshot(MappingProxyType(answers), valid_until)
