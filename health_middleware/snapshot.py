"""The snapshot: every endpoint's finished responses, replaced by one assignment.

Readers take ``health.snapshot`` once and use it; nothing in it is ever mutated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from health_middleware.check import CheckState
from health_middleware.endpoint import Endpoint
from health_middleware.prestop import Prestop
from health_middleware.report import Service, evaluate, stale
from health_middleware.response import Prepared, prepare


@dataclass(frozen=True, slots=True)
class Answers:
    get: Prepared
    head: Prepared
    stale_get: Prepared
    stale_head: Prepared
    prestop: Prestop | None = None  # the pre-stop endpoint acts rather than answers


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
    prestop: Prestop | None = None,
) -> Snapshot:
    states = tuple(states)
    answers: dict[str, Answers] = {}
    if prestop is not None:
        refused = prestop.refused
        answers[prestop.path] = answers[prestop.path + "/"] = Answers(
            refused, refused, refused, refused, prestop
        )
    for endpoint in endpoints:
        fresh = endpoint.format.render(evaluate(endpoint, states, draining), endpoint, service, now)
        get, head = prepare(fresh.status, fresh.content_type, fresh.body)
        old = endpoint.format.render(stale(), endpoint, service, now)
        stale_get, stale_head = prepare(old.status, old.content_type, old.body)
        entry = Answers(get, head, stale_get, stale_head)
        answers[endpoint.path] = entry
        if endpoint.path != "/":
            answers[endpoint.path + "/"] = entry
    return Snapshot(MappingProxyType(answers), valid_until)
