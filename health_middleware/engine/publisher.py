"""The publisher: builds the snapshot from what is registered and what is known, and
swaps it in by one assignment (``snapshot``), which requests read and never lock.

Until a start of the runtime has been asked for in this process (``activated``)
every snapshot is published already expired (valid until -inf), so the first health
request takes the slow path, which starts the refresher; the hot path reads no flag.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

from health_middleware.engine.callbacks import Callbacks
from health_middleware.engine.drain import Drain
from health_middleware.engine.registry import Registry
from health_middleware.engine.results import Results
from health_middleware.engine.snapshot import Snapshot, build


class Publisher:
    def __init__(
        self,
        registry: Registry,
        results: Results,
        drain: Drain,
        callbacks: Callbacks,
        *,
        stale_after: float,
    ) -> None:
        self._registry = registry
        self._results = results
        self._drain = drain
        self._callbacks = callbacks
        self.stale_after = stale_after
        self._lock = threading.Lock()
        self.activated = False
        self._first_round = threading.Event()
        self.snapshot: Snapshot = self._build(-math.inf, started=False)

    def publish(self) -> None:
        """Build a snapshot from the current state and swap it in."""
        with self._lock:
            started = self.activated
            valid_until = time.monotonic() + self.stale_after if started else -math.inf
            snapshot = self.snapshot = self._build(valid_until, started=started)
            if started and self._results.all_reported():
                self._first_round.set()
        self._callbacks.published(snapshot)

    def _build(self, valid_until: float, *, started: bool) -> Snapshot:
        registry = self._registry
        return build(
            registry.endpoints(),
            self._results.states(),
            draining=self._drain.draining,
            service=registry.service,
            now=time.time(),
            valid_until=valid_until,
            started=started,
            prestop=registry.prestop,
            details_token=registry.details_token,
            transitions=self._results.transitions,
        )

    # -- the first round -------------------------------------------------------------

    def first_round_done(self) -> bool:
        """Whether a snapshot with every check's first result has been published."""
        return self._first_round.is_set()

    async def wait_first_round_async(self) -> None:
        deadline = time.monotonic() + self._registry.first_round_bound()
        while not self.first_round_done() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    def wait_first_round_sync(self) -> None:
        if not self.first_round_done():
            self._first_round.wait(self._registry.first_round_bound())

    def after_fork(self) -> None:
        """In a forked child: no rendering here and no lock of the parent's (another
        thread of the parent may have held one at the fork). The expired snapshot
        sends the first request down the slow path, which starts this process's
        refresher."""
        self._lock = threading.Lock()
        self.activated = False
        self._first_round = threading.Event()
        old = self.snapshot
        self.snapshot = Snapshot(old.answers, -math.inf, started=False, statuses=old.statuses)
