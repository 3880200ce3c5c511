"""The refresher: runs every check on its own interval and publishes snapshots.

One per process, as a coroutine: on the app's event loop under ASGI (so async checks
can use the app's clients), on a daemon thread's own loop under WSGI. Sync checks run
on a bounded pool of daemon threads. A run still in flight is never started again;
past its timeout it is reported as failed and abandoned.

What is in flight belongs to one refresher: a refresher started after another died
(its loop closed, its thread gone) starts every check afresh, and a run of a refresher
that has stopped is never recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
import time
from collections.abc import Iterable
from typing import Any, Protocol

from health_middleware.engine.pool import CheckPool
from health_middleware.engine.run import Inflight, run_once
from health_middleware.engine.schedule import FOLLOW, Schedule
from health_middleware.instance.database import transient
from health_middleware.model.check import CheckState
from health_middleware.model.result import Outcome, Pending

logger = logging.getLogger("health_middleware")

# How often a snapshot is published even when no check finished: it renews the
# snapshot's validity and re-renders time-dependent fields.
TICK = 1.0
# How long the instance's database may stay busy before this worker runs alone.
BUSY_LIMIT = 5.0


class Checks(Protocol):
    """What the refresher needs of the engine (it never sees ``Health``)."""

    def states(self) -> Iterable[CheckState]:
        """Every registered check's state (checks may be added at any time)."""
        ...

    def record(self, state: CheckState, outcome: Outcome) -> None:
        """Take a finished run."""
        ...

    def follow(self) -> bool:
        """Take what the other workers of the instance published (results, the
        drain); return whether anything changed."""
        ...

    def refresh(self) -> None:
        """Follow the drain file and publish a fresh snapshot."""
        ...

    def leave_instance(self, error: Exception) -> None:
        """The instance's database cannot be used: run alone from now on."""
        ...


class Refresher:
    def __init__(self, checks: Checks, pool: CheckPool, schedule: Schedule) -> None:
        self._checks = checks
        self._pool = pool
        self._schedule = schedule
        self._dirty = True  # something to publish
        self._published = -math.inf  # time.monotonic() of the last publish
        self._runs: set[asyncio.Task[None]] = set()
        self._inflight: dict[str, Inflight] = {}  # check name -> its run in flight
        self._unshared: dict[str, bytes] = {}  # finished runs not yet in the database
        self._busy_since: float | None = None  # when the database became busy, if it is
        self._wake = asyncio.Event()
        self._stopping = False

    @property
    def pool(self) -> CheckPool:
        """The threads its sync checks run on."""
        return self._pool

    async def run(self) -> None:
        try:
            await self._loop()
        except GeneratorExit:  # discarded with a loop that died under it: nothing runs
            self._pool.shutdown()
            raise
        except BaseException:
            await self._finish()
            raise
        await self._finish()

    async def _loop(self) -> None:
        checks, schedule = self._checks, self._schedule
        following = schedule.shared is not None
        while not self._stopping:
            now = time.monotonic()
            wake_at = now + (FOLLOW if following else TICK)
            for state in list(checks.states()):  # checks may be added at any time
                try:
                    run, due = schedule.take(state.check, now)
                    if schedule.wrote:  # the database took a write: not stuck
                        schedule.wrote, self._busy_since = False, None
                except sqlite3.Error as exc:
                    if self._unusable(exc, now):
                        self._leave(exc)  # run alone: the schedule is local now
                        run, due = schedule.take(state.check, now)
                    else:  # another worker is writing: not this time
                        run, due = False, now + TICK
                        schedule.defer(state.check.name, due)
                if run:
                    self._launch(state)
                wake_at = min(wake_at, due)
            if following:
                following = self._follow()
            try:
                if self._dirty or now - self._published >= TICK - FOLLOW:
                    self._dirty = False
                    self._published = now
                    checks.refresh()
            except Exception:  # never let one bad value stop every check
                logger.exception("publishing the health snapshot failed; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, wake_at - time.monotonic())):
                    await self._wake.wait()

    def _follow(self) -> bool:
        """Take the other workers' news, and share what could not be shared yet;
        return whether this process still follows an instance."""
        shared = self._schedule.shared
        if shared is None:
            return False
        try:
            for name, record in list(self._unshared.items()):
                shared.finish(name, record)
                del self._unshared[name]
            if self._checks.follow():
                self._dirty = True
        except sqlite3.Error as exc:
            if self._unusable(exc, time.monotonic()):
                self._leave(exc)
                return False
        return True

    def _unusable(self, error: sqlite3.Error, now: float) -> bool:
        """A database that fails, or stays busy past BUSY_LIMIT (a worker stopped in
        the middle of a write holds it), cannot be used."""
        if not transient(error):
            return True
        if self._busy_since is None:
            self._busy_since = now
        return now - self._busy_since > BUSY_LIMIT

    def _leave(self, error: Exception) -> None:
        """The instance's database is unusable (corrupt, full, gone): this worker
        runs its checks alone rather than serve results that no longer change."""
        self._unshared.clear()
        self._checks.leave_instance(error)

    def stop(self) -> None:
        """Ask the loop to end (call on the refresher's own loop)."""
        self._stopping = True
        self._wake.set()

    def _launch(self, state: CheckState) -> None:
        inflight = self._inflight.get(state.check.name)
        if inflight is not None and not inflight.done():
            return  # single-flight: the last run has not returned yet
        task = asyncio.get_running_loop().create_task(
            self._run(state), name=f"health-check:{state.check.name}"
        )
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def _run(self, state: CheckState) -> None:
        # A queued run waits at most as long as the longest timeout of the checks
        # ahead of it would keep a thread (twice, for slack), then counts as not started.
        queued_within = 2 * max(
            (s.check.timeout for s in self._checks.states()), default=state.check.timeout
        )

        def track(run: Inflight) -> None:
            self._inflight[state.check.name] = run

        self._take(state, await run_once(state.check, self._pool, queued_within, track))

    def _take(self, state: CheckState, outcome: Outcome) -> None:
        """Record a finished run, and share it with the instance's other workers."""
        if self._stopping or isinstance(outcome, Pending):
            return  # a stopped refresher's late results are not news; Pending is none
        self._checks.record(state, outcome)
        shared, check = self._schedule.shared, state.check
        if shared is not None and check.shared:
            # Shared on the loop's next pass (_follow), where a busy database means
            # "again later" and a broken one means running alone.
            self._unshared[check.name] = state.to_record()
        self._dirty = True
        self._wake.set()

    async def _finish(self) -> None:
        """Cancel what is in flight and give it a moment to unwind."""
        pending: set[asyncio.Future[Any]] = set(self._runs)
        for run in self._inflight.values():
            if isinstance(run, asyncio.Future) and not run.done():
                pending.add(run)
        for future in pending:
            future.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        self._pool.shutdown()
