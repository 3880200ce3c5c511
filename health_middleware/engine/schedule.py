"""When each check runs next, and in which process.

Alone in its process (one server process, or a check of the process itself), a check
is due every ``interval``. Shared by the workers of an instance, its next run is
claimed in the instance's database by whichever worker finds it due first (see
``instance.database``), so it runs once per interval for the whole instance.

The first run is at once (readiness waits for it); the next is offset by a random
part of the interval, once, when ``jitter`` is on: instances started together by a
deploy then check their dependencies spread over the interval, not in lockstep.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from health_middleware.instance.database import SharedState
from health_middleware.model.check import Check

# How often a worker looks at its instance's database for the others' results.
FOLLOW = 0.05
# A claimed run's lease outlives its timeout by this much: the runner reports the
# timeout itself; only a worker killed or wedged mid-run lets the lease lapse.
GRACE = 0.25


class Schedule:
    def __init__(self, shared: Callable[[], SharedState | None], jitter: bool) -> None:
        self._shared = shared  # the instance's database now (``Sharing.shared``)
        self._jitter = jitter
        self._due: dict[str, float] = {}  # time.monotonic(): when to look again
        self._offsets: dict[str, float] = {}
        self.wrote = False  # whether a claim reached the database since the refresher looked

    @property
    def shared(self) -> SharedState | None:
        """The instance's database; None: this process runs its checks alone."""
        return self._shared()

    def take(self, check: Check, now: float) -> tuple[bool, float]:
        """Whether this process starts a run of ``check`` now, and when to look
        again (``time.monotonic()``)."""
        name = check.name
        due = self._due.get(name, now)
        if due > now:
            return False, due
        offset = self._offset(check)
        shared = self.shared
        if shared is None or not check.shared:
            first = name not in self._due
            due = now + check.interval + (offset if first else 0.0)
            self._due[name] = due
            return True, due
        # The database's times are time.monotonic(), like ``now``: one clock for every
        # worker (system-wide on Linux), which the wall clock being set cannot move.
        claim = shared.claim(name, now, check.interval, check.timeout + GRACE, offset)
        self.wrote = True
        if claim is not None:
            due = now + check.interval
        else:
            known = shared.next_due(name)
            wait = (known or now) - now
            due = now + min(max(FOLLOW, wait), check.interval + check.timeout + GRACE)
        self._due[name] = due
        return claim is not None, due

    def defer(self, name: str, until: float) -> None:
        """Look at ``name`` again only at ``until`` (after the database was busy)."""
        self._due[name] = until

    def _offset(self, check: Check) -> float:
        if not self._jitter:
            return 0.0
        if check.name not in self._offsets:
            self._offsets[check.name] = random.random() * check.interval
        return self._offsets[check.name]
