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
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, Protocol

from health_middleware.engine.pool import CheckPool
from health_middleware.engine.schedule import FOLLOW, Schedule
from health_middleware.engine.stalls import (
    Steps,
    ThreadLateness,
    gil_wait,
    gil_waits,
    loop_lateness,
    thread_lateness,
)
from health_middleware.instance.database import transient
from health_middleware.model.check import Check, CheckState
from health_middleware.model.result import (
    Outcome,
    Pending,
    blocked,
    from_exception,
    from_return,
    from_timeout,
    not_started,
    unrepresentable,
)

logger = logging.getLogger("health_middleware")

# How often a snapshot is published even when no check finished: it renews the
# snapshot's validity and re-renders time-dependent fields.
TICK = 1.0
# How long the instance's database may stay busy before this worker runs alone.
BUSY_LIMIT = 5.0
# A failed run that others held up this long (seconds) is run again, up to RERUNS times.
HELD_UP = 0.05
RERUNS = 2

_Ran = tuple[bool, Any]  # (raised, value or exception)
# A sync run as its thread saw it: (raised, value or exception, started, finished,
# the thread lateness over it, the time its thread waited for the GIL).
_SyncRan = tuple[bool, Any, float, float, float, float]


def _call_sync(fn: Callable[[], Any], lateness: ThreadLateness) -> _SyncRan:
    started, late, waits = time.monotonic(), lateness.now(), gil_waits()
    try:
        raised, value = False, fn()
    except BaseException as exc:  # SystemExit and friends from a check must not escape
        raised, value = True, exc
    waited = gil_wait(waits, gil_waits())
    return raised, value, started, time.monotonic(), lateness.since(late), waited


async def _call_async(fn: Callable[[], Any], steps: Steps) -> _Ran:
    try:
        return False, await steps.run(fn)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # KeyboardInterrupt/SystemExit would stop the loop
        return True, exc


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned run's result so asyncio does not log it as lost."""
    if not future.cancelled():
        future.exception()


def _abandon(work: asyncio.Future[Any]) -> None:
    """Give up on a run: cancelled if async, left to its thread if sync."""
    work.cancel()
    work.add_done_callback(_consume)


Inflight = asyncio.Future[Any] | Future[Any]


def _untracked(run: Inflight) -> None:
    pass


async def run_once(
    check: Check,
    pool: CheckPool,
    queued_within: float,
    track: Callable[[Inflight], object] = _untracked,
) -> Outcome:
    """Run ``check`` once, now, bounded by its timeout, and return its outcome: sync
    checks on ``pool`` (the timeout counts from when a thread takes the run; a run
    still queued after ``queued_within`` seconds counts as not started), async
    checks on the running loop. ``track`` is given the run in flight (single-flight
    bookkeeping). A run past its timeout is abandoned: cancelled if async, left to its
    thread if sync. The timeout counts the run's own time: what another check or the
    app held from it (the loop, the GIL) is credited back (see stalls.py), and a run
    that fails after being held up that long is no verdict on the check (its own
    timeouts inside were fooled too): it runs again at once, up to ``RERUNS`` times.
    The refresher's runs and ``Health.run_once`` both come here."""
    attempt = 0
    while True:
        if check.is_async:
            outcome, held = await _run_async(check, track)
        else:
            outcome, held = await _run_sync(check, pool, queued_within, track)
        if outcome.status != "fail" or held < HELD_UP or attempt == RERUNS:
            return outcome
        attempt += 1
        logger.debug(
            "check %r failed after others held it up for %.2f s: running it again",
            check.name,
            held,
        )


def _convert(raised: bool, value: Any, now: float, duration: float) -> Outcome:
    convert = from_exception if raised else from_return
    try:
        return convert(value, now, duration)
    except BaseException:  # user code ran in there (see result.py)
        return unrepresentable(now, duration)


async def _run_async(check: Check, track: Callable[[Inflight], object]) -> tuple[Outcome, float]:
    """One run on this loop: its outcome, and how long others held it up."""
    lateness = loop_lateness(asyncio.get_running_loop())
    steps = Steps()
    started, mark = time.monotonic(), lateness.enter()

    def credit() -> float:  # the loop held by others during this run
        return max(0.0, lateness.since(mark) - steps.spent)

    work = asyncio.ensure_future(_call_async(check.fn, steps))
    track(work)
    try:
        while not work.done() and steps.spent <= check.timeout:
            remaining = started + check.timeout + credit() - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.wait((work,), timeout=remaining)
    except asyncio.CancelledError:
        work.cancel()
        raise
    finally:
        taken = credit()
        lateness.leave()
    duration = max(0.0, time.monotonic() - started - taken)
    now = time.time()
    if steps.spent > check.timeout:
        # It held the loop past its own timeout: it fails, and the runs it held up
        # (credited above) do not.
        _abandon(work)
        return blocked(check.timeout, steps.spent, now, duration), taken
    if not work.done():
        _abandon(work)
        return from_timeout(check.timeout, now, duration), taken
    if work.cancelled():
        return from_exception(asyncio.CancelledError(), now, duration), taken
    return _convert(*work.result(), now, duration), taken


async def _run_sync(
    check: Check, pool: CheckPool, queued_within: float, track: Callable[[Inflight], object]
) -> tuple[Outcome, float]:
    """One run on ``pool``: its outcome, and how long others held it up."""
    lateness = thread_lateness()
    submitted, mark = time.monotonic(), lateness.enter()
    try:
        pending: Future[_SyncRan] = pool.submit(lambda: _call_sync(check.fn, lateness))
        track(pending)
        work = asyncio.wrap_future(pending)
        began: float | None = None
        try:
            # The thread's own record decides (pending.done()): the loop may have
            # been held past the moment the run ended.
            while not pending.done():
                began = pool.started_at(pending) or began
                if began is None:
                    deadline = submitted + queued_within
                else:  # credit: the time its thread waited for the GIL held by others
                    held = min(lateness.since(mark), pool.gil_wait(pending))
                    deadline = began + check.timeout + held
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await asyncio.wait((work,), timeout=min(remaining, check.timeout))
        except asyncio.CancelledError:
            work.cancel()
            raise
    finally:
        lateness.leave()
    now = time.time()
    if pending.done() and not pending.cancelled():
        raised, value, ran_from, ran_to, late, waited = pending.result()
        held = min(late, waited)
        duration = max(0.0, ran_to - ran_from - held)
        if duration > check.timeout:  # it ended, but past its timeout
            return from_timeout(check.timeout, now, duration), held
        return _convert(raised, value, now, duration), held
    waited = time.monotonic() - (began or submitted)
    if not pool.abandon(pending):
        # It waited for a thread all along: the others were busy the whole time.
        return not_started(pool.max_threads, waited, now), 0.0
    _abandon(work)
    return from_timeout(check.timeout, now, waited), 0.0


class Checks(Protocol):
    """What the refresher needs of the registry (it never sees ``Health``)."""

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
        self._schedule.shared = None
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
