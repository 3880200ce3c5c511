"""The snapshot: every endpoint's finished responses, replaced by one assignment.

Readers take ``health.snapshot`` once and use it; nothing in it is ever mutated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from health_middleware.check import CheckState
from health_middleware.endpoint import Endpoint
from health_middleware.prestop import Prestop, bearer_matches
from health_middleware.report import Report, Service, evaluate, stale
from health_middleware.response import Prepared, prepare


@dataclass(frozen=True, slots=True)
class Answers:
    get: Prepared
    head: Prepared
    stale_get: Prepared
    stale_head: Prepared
    prestop: Prestop | None = None  # the pre-stop endpoint acts rather than answers
    detailed: Answers | None = None  # for a request bearing the details token
    token: bytes | None = None  # "Bearer <details token>"
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


def _answers(endpoint: Endpoint, report: Report, service: Service, now: float) -> Answers:
    fresh = endpoint.format.render(report, endpoint, service, now)
    get, head = prepare(fresh.status, fresh.content_type, fresh.body)
    old = endpoint.format.render(stale(), endpoint, service, now)
    stale_get, stale_head = prepare(old.status, old.content_type, old.body)
    return Answers(get, head, stale_get, stale_head)


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
    token = b"Bearer " + details_token.encode("ascii") if details_token else None
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
