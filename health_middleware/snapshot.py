"""The snapshot: every endpoint's finished responses, replaced by one assignment.

Readers take ``health.snapshot`` once and use it; nothing in it is ever mutated.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace

import orjson

from health_middleware.check import CheckState
from health_middleware.endpoint import Endpoint, evaluate
from health_middleware.prestop import Prestop, bearer_matches
from health_middleware.report import Report, Service, stale
from health_middleware.response import Prepared, head_of, prepare

logger = logging.getLogger("health_middleware")


@dataclass(frozen=True, slots=True)
class Answers:
    get: Prepared
    head: Prepared
    stale_get: Prepared
    stale_head: Prepared
    prestop: Prestop | None = None  # the pre-stop endpoint acts rather than answers
    detailed: Answers | None = None  # for a request bearing the details token
    token: bytes | None = None  # the details token
    # Whether a request needs the slow path (an action, or a token to compare): a plain
    # field, read on every probe, where a property would cost a call.
    special: bool = False

    def for_bearer(self, authorization: bytes | None) -> Answers:
        """The detailed answers where ``authorization`` carries the details token
        (constant-time comparison), else these."""
        detailed, token = self.detailed, self.token
        if detailed is not None and token is not None and bearer_matches(authorization, token):
            return detailed
        return self


@dataclass(frozen=True, slots=True)
class Snapshot:
    answers: dict[str, Answers]  # a plain dict: faster to look up; never mutated
    valid_until: float  # time.monotonic(); past it, the stale answers apply


_RENDER_FAILED = "application/health+json"
_reported_failures: set[tuple[str, str]] = set()  # (path, error kind): logged once each


def _render(endpoint: Endpoint, report: Report, service: Service, now: float) -> Prepared:
    """The endpoint's finished response; a format that raises is contained: this
    endpoint answers 500 saying so, and every other endpoint is unaffected."""
    try:
        rendered = endpoint.format.render(report, endpoint, service, now)
        return prepare(rendered.status, rendered.content_type, rendered.body)[0]
    except Exception as exc:
        kind = type(exc).__name__
        if (endpoint.path, kind) not in _reported_failures:
            _reported_failures.add((endpoint.path, kind))
            logger.exception("rendering %s failed; it answers 500 until it renders", endpoint.path)
        body = orjson.dumps(
            {"status": "fail", "output": f"the report could not be rendered: {kind}"}
        )
        return prepare(500, _RENDER_FAILED, body)[0]


def _answers(endpoint: Endpoint, report: Report, service: Service, now: float) -> Answers:
    get = _render(endpoint, report, service, now)
    stale_get = _render(endpoint, stale(), service, now)
    return Answers(get, head_of(get), stale_get, head_of(stale_get))


def build(
    endpoints: Iterable[Endpoint],
    states: Iterable[CheckState],
    *,
    draining: bool,
    service: Service,
    now: float,
    valid_until: float,
    prestop: Prestop | None = None,
    details_token: str | None = None,
) -> Snapshot:
    """Render every endpoint; with a details token, each also with error messages."""
    states = tuple(states)
    answers: dict[str, Answers] = {}
    if prestop is not None:
        refused = prestop.refused
        answers[prestop.path] = answers[prestop.path + "/"] = Answers(
            refused, refused, refused, refused, prestop, special=True
        )
    # With expose_errors every answer has the details already: no token needed.
    detailed = details_token is not None and not service.expose_errors
    exposed = replace(service, expose_errors=True) if detailed else service
    token = details_token.encode("ascii") if details_token else None
    for endpoint in endpoints:
        report = evaluate(endpoint, states, draining)
        entry = _answers(endpoint, report, service, now)
        if detailed:
            details = _answers(endpoint, report, exposed, now)
            entry = replace(entry, detailed=details, token=token, special=True)
        answers[endpoint.path] = entry
        if endpoint.path != "/":
            answers[endpoint.path + "/"] = entry
    return Snapshot(answers, valid_until)
