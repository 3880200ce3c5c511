"""A stateful property test: random sequences of check outcomes, drains, forks and
restarts; after each step every endpoint agrees with a simple model."""

from __future__ import annotations

import os
import time
from typing import Any, cast

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from werkzeug.test import Client

from health_middleware import CheckResult, Health, WSGIHealthMiddleware
from health_middleware.model.status import Status, aggregate
from tests.test_wsgi import wsgi_app

# name -> (critical, tags): one of each kind a probe counts differently.
CHECKS = {
    "db": (True, ()),
    "search": (False, ("ready",)),
    "worker": (False, ("live",)),
    "cache": (False, ()),
}
OUTCOMES = ["pass", "warn", "fail", "raise"]


def expected(outcomes: dict[str, str], draining: bool) -> dict[str, int]:
    status = {n: cast(Status, "fail" if o == "raise" else o) for n, o in outcomes.items()}
    full = aggregate((CHECKS[n][0], s) for n, s in status.items())
    live = aggregate([(True, status["worker"])])  # a probe group: every check decides
    ready = aggregate((True, status[n]) for n in ("db", "search"))
    return {
        "/health": 503 if full == "fail" else 200,
        "/health/live": 503 if live == "fail" else 200,
        "/health/ready": 503 if draining or ready == "fail" else 200,
        "/health/started": 200,
    }


class HealthModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.outcomes = dict.fromkeys(CHECKS, "pass")
        self.draining = False
        self.health = Health(interval=0.01, timeout=1)
        for name, (critical, tags) in CHECKS.items():
            self.health.add_check(name, self._check(name), critical=critical, tags=tags)
        self.client = Client(WSGIHealthMiddleware(wsgi_app, self.health))

    def _check(self, name: str) -> Any:
        def check() -> CheckResult:
            outcome = self.outcomes[name]
            if outcome == "raise":
                raise RuntimeError("boom")
            return CheckResult(outcome)

        return check

    def answers(self) -> dict[str, int]:
        return {p: self.client.get(p).status_code for p in expected(self.outcomes, False)}

    def settle(self) -> dict[str, int]:
        """Wait (bounded) until the refresher has seen the current outcomes."""
        want = {n: "fail" if o == "raise" else o for n, o in self.outcomes.items()}
        deadline = time.monotonic() + 10
        while True:
            doc = self.client.get("/health").json
            seen = {n: e[0]["status"] for n, e in (doc or {}).get("checks", {}).items()}
            if seen == want:
                return self.answers()
            assert time.monotonic() < deadline, (seen, want)
            time.sleep(0.005)

    @rule(name=st.sampled_from(sorted(CHECKS)), outcome=st.sampled_from(OUTCOMES))
    def set_outcome(self, name: str, outcome: str) -> None:
        self.outcomes[name] = outcome

    @rule()
    def drain(self) -> None:
        self.health.drain()
        self.draining = True

    @rule()
    def restart(self) -> None:
        self.health.stop()
        self.health.runtime.start_in_thread()

    @rule()
    def fork(self) -> None:
        """A forked child starts afresh (not draining) and answers on its own."""
        self.settle()
        pid = os.fork()
        if pid == 0:  # the child: exit 0 only if it agrees with the model
            code = 1
            try:
                child = Client(WSGIHealthMiddleware(wsgi_app, self.health))
                deadline = time.monotonic() + 10
                while child.get("/health/started").status_code != 200:
                    if time.monotonic() > deadline:
                        os._exit(2)
                    time.sleep(0.005)
                got = {p: child.get(p).status_code for p in expected(self.outcomes, False)}
                code = 0 if got == expected(self.outcomes, False) else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0

    @invariant()
    def endpoints_agree_with_the_model(self) -> None:
        assert self.settle() == expected(self.outcomes, self.draining)

    def teardown(self) -> None:
        self.health.stop()


HealthModel.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestHealthModel = HealthModel.TestCase
