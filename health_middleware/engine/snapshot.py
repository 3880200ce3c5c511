"""The snapshot: every endpoint's finished responses, replaced by one assignment, and
the one decision of what a request gets (``Snapshot.decide``, no I/O).

Readers take ``registry.snapshot`` once and use it; nothing in it is ever mutated.
A snapshot is *expired* past ``valid_until``: its refresher has not published in
time, and each endpoint answers its ``expired_*`` responses (the report's phase
``stale``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import orjson

from health_middleware.formats.negotiate import Negotiate
from health_middleware.model.check import CheckState
from health_middleware.model.endpoint import Endpoint, evaluate
from health_middleware.model.report import Format, Report, Service, Transition, unpublished
from health_middleware.model.status import Status
from health_middleware.web.prestop import Prestop, bearer_matches
from health_middleware.web.response import METHOD_NOT_ALLOWED, Prepared, head_of, prepare

logger = logging.getLogger("health_middleware")


@dataclass(frozen=True, slots=True)
class Answers:
    get: Prepared
    head: Prepared
    expired_get: Prepared  # once the snapshot has expired
    expired_head: Prepared
    prestop: Prestop | None = None  # the pre-stop endpoint acts rather than answers
    detailed: Answers | None = None  # for a request bearing the details token
    token: bytes | None = None  # the details token
    # The variants of an endpoint with format="negotiate" (these answers are its
    # default's): the request's Accept header and ?format= choose one.
    negotiation: Negotiation | None = None
    # Whether every request needs the slow path (an action, a token to compare, a
    # variant to choose): a plain field, read on every probe, where a property
    # would cost a call.
    slow: bool = False

    def for_bearer(self, authorization: bytes | None) -> Answers:
        """The detailed answers where ``authorization`` carries the details token
        (constant-time comparison), else these."""
        detailed, token = self.detailed, self.token
        if detailed is not None and token is not None and bearer_matches(authorization, token):
            return detailed
        return self


@dataclass(frozen=True, slots=True)
class Negotiation:
    """An endpoint's variants, each with its own answers (and detailed answers)."""

    format: Negotiate
    variants: Mapping[str, Answers]

    def choose(self, accept: bytes | None, query: bytes | str | None) -> Answers:
        return self.variants[self.format.pick(accept, query)]


class Decision(NamedTuple):
    """What a face does for a request on the slow path: only the I/O is its own. (A
    tuple: made on every slow request, where a frozen dataclass costs a microsecond.)"""

    response: Prepared  # what to send (after the steps below)
    start: bool = False  # start this process's runtime first, then decide again
    revive: bool = False  # expired: revive a refresher that died with its loop or thread
    drain_for: float | None = None  # pre-stop: drain, wait this long, then send


# The Authorization header, read only where a decision needs it (the pre-stop
# endpoint, a details token): most slow requests never look at the headers.
Authorization = Callable[[], bytes | None]
# The Accept header and the query string, read only for an endpoint that negotiates.
Accept = Callable[[], tuple[bytes | None, bytes | str | None]]


def _nothing() -> tuple[None, None]:
    return None, None


@dataclass(frozen=True, slots=True)
class Snapshot:
    answers: dict[str, Answers]  # a plain dict: faster to look up; never mutated
    valid_until: float  # time.monotonic(); past it, the snapshot has expired
    started: bool = True  # False until a start was asked for in this process
    # Each endpoint's report status by its path (no twin with a trailing slash, no
    # pre-stop endpoint): what readers that are not HTTP (gRPC's health service) answer.
    statuses: Mapping[str, Status] = field(default_factory=dict)

    def status(self, path: str, now: float) -> Status:
        """The report status of endpoint ``path`` (one of ``statuses``) at ``now``
        (``time.monotonic()``): ``fail`` once the snapshot has expired, as its HTTP
        answers are then the expired ones."""
        return "fail" if now > self.valid_until else self.statuses[path]

    def decide(
        self,
        path: str,
        method: str | None,
        authorization: Authorization,
        now: float,
        accept: Accept = _nothing,
    ) -> Decision:
        """The slow path's answer for a request to ``path`` (one of the snapshot's),
        at ``now`` (``time.monotonic()``). The faces inline the fast path (a plain
        endpoint, not expired, GET/HEAD/other) and must agree with this."""
        answers = self.answers[path]
        negotiation = answers.negotiation
        if negotiation is not None:
            answers = negotiation.choose(*accept())
        if not self.started:
            return Decision(_pick(answers, method, expired=False), start=True)
        prestop = answers.prestop
        if prestop is not None:
            if method not in ("GET", "POST"):
                return Decision(prestop.not_allowed)
            if prestop.authorised(authorization()):
                return Decision(prestop.done, drain_for=prestop.delay)
            return Decision(prestop.refused)
        if answers.token is not None:
            answers = answers.for_bearer(authorization())
        expired = now > self.valid_until
        return Decision(_pick(answers, method, expired), revive=expired)


def _pick(answers: Answers, method: str | None, expired: bool) -> Prepared:
    if method == "GET":
        return answers.expired_get if expired else answers.get
    if method == "HEAD":
        return answers.expired_head if expired else answers.head
    return METHOD_NOT_ALLOWED


_RENDER_FAILED = "application/health+json"
_reported_failures: set[tuple[str, str]] = set()  # (path, error kind): logged once each


_VARY = (("vary", "Accept"),)
Extra = tuple[tuple[str, str], ...]  # headers beyond those every response has


def _render(
    report: Report,
    service: Service,
    now: float,
    *,
    format: Format,
    extra: Extra,
) -> Prepared:
    """The endpoint's finished response in ``format``; a format that raises is
    contained: this endpoint answers 500 saying so, and every other endpoint is
    unaffected."""
    try:
        rendered = format.render(report, service, now)
        return prepare(rendered.status, rendered.content_type, rendered.body, extra)
    except Exception as exc:
        kind = type(exc).__name__
        if (report.path, kind) not in _reported_failures:
            _reported_failures.add((report.path, kind))
            logger.exception("rendering %s failed; it answers 500 until it renders", report.path)
        body = orjson.dumps(
            {"status": "fail", "output": f"the report could not be rendered: {kind}"}
        )
        return prepare(500, _RENDER_FAILED, body, extra)


@dataclass(frozen=True, slots=True)
class _Renderer:
    """What every endpoint of one snapshot is rendered with."""

    service: Service
    exposed: Service | None  # set: each endpoint also has a detailed twin for the token
    token: bytes | None
    now: float

    def answers(self, report: Report, service: Service, format: Format, extra: Extra) -> Answers:
        now = self.now
        get = _render(report, service, now, format=format, extra=extra)
        expired = _render(unpublished(report), service, now, format=format, extra=extra)
        return Answers(get, head_of(get), expired, head_of(expired))

    def entry(self, report: Report, format: Format, extra: Extra = ()) -> Answers:
        """One endpoint's (or variant's) answers, with their detailed twin."""
        entry = self.answers(report, self.service, format, extra)
        if self.exposed is not None:
            details = self.answers(report, self.exposed, format, extra)
            entry = replace(entry, detailed=details, token=self.token, slow=True)
        return entry

    def negotiated(self, negotiate: Negotiate, report: Report) -> Answers:
        """Every variant rendered now; a request only picks one (``Snapshot.decide``)."""
        variants = {
            name: self.entry(report, variant, _VARY) for name, variant in negotiate.formats.items()
        }
        default = variants[negotiate.default]
        return replace(default, negotiation=Negotiation(negotiate, variants), slow=True)


def build(
    endpoints: Iterable[Endpoint],
    states: Iterable[CheckState],
    *,
    draining: bool,
    service: Service,
    now: float,
    valid_until: float,
    started: bool = True,
    prestop: Prestop | None = None,
    details_token: str | None = None,
    transitions: tuple[Transition, ...] = (),
) -> Snapshot:
    """Render every endpoint; with a details token, each also with error messages."""
    states = tuple(states)
    answers: dict[str, Answers] = {}
    statuses: dict[str, Status] = {}
    if prestop is not None:
        refused = prestop.refused
        answers[prestop.path] = answers[prestop.path + "/"] = Answers(
            refused, refused, refused, refused, prestop, slow=True
        )
    # With expose_errors every answer has the details already: no token needed.
    detailed = details_token is not None and not service.expose_errors
    exposed = replace(service, expose_errors=True) if detailed else None
    token = details_token.encode("ascii") if details_token else None
    renderer = _Renderer(service, exposed, token, now)
    for endpoint in endpoints:
        report = evaluate(endpoint, states, draining)
        if transitions:
            report = replace(report, transitions=transitions)
        chosen = endpoint.format
        if isinstance(chosen, Negotiate):
            entry = renderer.negotiated(chosen, report)
        else:
            entry = renderer.entry(report, chosen)
        answers[endpoint.path] = entry
        statuses[endpoint.path] = report.status
        if endpoint.path != "/":
            answers[endpoint.path + "/"] = entry
    return Snapshot(answers, valid_until, started, statuses)
