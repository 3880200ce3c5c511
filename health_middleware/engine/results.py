"""Results: what this process knows of each check's results, a ``CheckState`` per
registered check. Runs this process made are recorded (flap damping), results another
worker of the instance made are adopted, the recent transitions are kept for the
status page, and every change of status is logged once and passed to ``on_change``:
once per instance, by the worker whose run made it.

States are added as checks are registered (``track``) and replace the whole dict, so
a reader on another thread (the refresher under WSGI) iterates a copy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator

from health_middleware.engine.callbacks import Callbacks
from health_middleware.engine.drain import Drain
from health_middleware.engine.registry import Registry
from health_middleware.model.check import Check, CheckState
from health_middleware.model.endpoint import evaluate
from health_middleware.model.report import Report, Transition
from health_middleware.model.result import BLOCKED, Outcome
from health_middleware.model.status import Status

logger = logging.getLogger("health_middleware")

HISTORY = 20  # transitions kept for the whole and for each check
_VERB = {"pass": "passing", "warn": "warning", "fail": "failing"}


class Results:
    def __init__(self, registry: Registry, drain: Drain, callbacks: Callbacks) -> None:
        self._registry = registry
        self._drain = drain
        self._callbacks = callbacks
        self._states: dict[str, CheckState] = {}
        self.reset()

    def track(self, check: Check) -> None:
        """Keep a state for a check just registered."""
        self._states = {**self._states, check.name: CheckState(check)}

    def states(self) -> Iterator[CheckState]:
        """Every registered check's state in this process (a copy, read unlocked)."""
        return iter(self._states.values())

    def all_reported(self) -> bool:
        """Whether every check has a result in this process."""
        return all(state.reported is not None for state in self._states.values())

    def reset(self) -> None:
        """Nothing known yet (at start, and in a forked child)."""
        for state in self._states.values():
            state.reset()
        self._overall: Status | None = None
        # The recent transitions, newest first: up to HISTORY for each subject (a
        # check's name, None for the whole), and all of them merged for the snapshot.
        self._history: dict[str | None, tuple[Transition, ...]] = {}
        self.transitions: tuple[Transition, ...] = ()

    def report(self, states: Iterable[CheckState] | None = None) -> Report:
        """The full report (``base_path``'s) as of now, from the last recorded results
        (or from ``states``: runs made apart, as by ``Runtime.run_once``)."""
        counted = self.states() if states is None else states
        return evaluate(self._registry.full, counted, self._drain.draining)

    def record(self, state: CheckState, outcome: Outcome) -> None:
        """Take a run this process made."""
        self._callbacks.ran(state.check, outcome)
        _note_slowness(state, outcome)
        _note_blocking(state, outcome)
        change = state.record(outcome)
        if change is None:
            return
        self._changed(state.check.name, *change, outcome.detail, outcome.time)
        if self.all_reported():
            overall = self.report().status
            if overall != self._overall:
                old, self._overall = self._overall, overall
                self._changed(None, old, overall, None, outcome.time)

    def adopt(self, rows: Iterable[tuple[str, bytes]]) -> bool:
        """Take the results another worker of the instance published (its run made
        the change, and it logged it); return whether there were any."""
        adopted = False
        for name, record in rows:
            adopted = True
            state = self._states.get(name)
            if state is not None and state.check.shared:
                change = state.adopt(record)
                if change is not None:
                    logger.debug("check %r is %s (from another worker)", name, change[1])
                    self._remember(name, *change, state.changed_at or time.time())
        if adopted and self.all_reported():
            overall = self.report().status
            if overall != self._overall:
                self._remember(None, self._overall, overall, time.time())
            self._overall = overall
        return adopted

    def _remember(self, name: str | None, old: Status | None, new: Status, at: float) -> None:
        """Keep a transition in the short history the status page shows."""
        transition = Transition(name, old, new, at)
        before = self._history.get(name, ())
        self._history = {**self._history, name: (transition, *before)[:HISTORY]}
        merged = (transition, *self.transitions)  # newest first, as recorded
        if len(before) == HISTORY:  # the subject's oldest has been dropped
            merged = tuple(t for t in merged if t is not before[-1])
        self.transitions = merged

    def _changed(
        self, name: str | None, old: Status | None, new: Status, why: str | None, at: float
    ) -> None:
        self._remember(name, old, new, at)
        what = "the service" if name is None else f"check {name!r}"
        if new == "pass" and old is None:
            logger.debug("%s is passing", what)
        elif new == "pass" and old is not None:  # a recovery: as loud as what it ends
            logger.warning("%s is passing again (was %s)", what, _VERB[old])
        else:
            logger.warning("%s is %s%s", what, _VERB[new], f": {why}" if why else "")
        self._callbacks.changed(name, old, new)


def _note_slowness(state: CheckState, outcome: Outcome) -> None:
    """Log once per change a check whose runs take more than half its timeout: one
    drifting towards its timeout is seen before it fails."""
    timeout = state.check.timeout
    # Hysteresis: slow past half the timeout, fast again only under 0.4 of it, so a
    # run time hovering at the line is named once, not on every run.
    slow = outcome.duration > timeout / 2 or (state.slow and outcome.duration > timeout * 0.4)
    if slow == state.slow:
        return
    state.slow = slow
    if slow:
        logger.warning(
            "check %r is slow: its run took %.3f s, more than half its timeout (%g s)",
            state.check.name,
            outcome.duration,
            timeout,
        )
    else:  # as loud as the warning it ends
        logger.warning(
            "check %r is no longer slow: its run took %.3f s (timeout %g s)",
            state.check.name,
            outcome.duration,
            timeout,
        )


def _note_blocking(state: CheckState, outcome: Outcome) -> None:
    """Name, once per change, an ``async def`` check whose own code held the event
    loop past its timeout (the checks it held up are not failed for it)."""
    blocking = outcome.output == BLOCKED
    if blocking == state.blocking:
        return
    state.blocking = blocking
    if blocking:
        logger.warning("check %r %s", state.check.name, outcome.detail)
    else:
        logger.warning("check %r no longer blocks the event loop", state.check.name)
