"""One run of a check, bounded by its timeout: ``run_once``, which the refresher's
runs and ``Health.run_once`` both use. Sync checks run on a pool's thread (the timeout
counts from when a thread takes the run), async checks on the running loop; a run past
its timeout is abandoned (cancelled if async, left to its thread if sync). The timeout
counts the run's own time (see stalls.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from health_middleware.engine.engine import Engine
from health_middleware.engine.pool import CheckPool
from health_middleware.engine.stalls import (
    Held,
    Steps,
    ThreadLateness,
    gil_wait,
    gil_waits,
    thread_lateness,
)
from health_middleware.model.check import Check, CheckState
from health_middleware.model.report import Report
from health_middleware.model.result import (
    Outcome,
    blocked,
    from_exception,
    from_return,
    from_timeout,
    not_started,
    unrepresentable,
)

logger = logging.getLogger("health_middleware")

# A failed run that others held up this long (seconds) is run again, up to RERUNS times.
HELD_UP = 0.05
RERUNS = 1
# What a timed-out run says: ours ("timeout"), or a timeout the check raised itself.
ONCE_THREADS = 64  # the most threads a one-shot run of every check uses
CLOSE_WAIT = 1.0  # seconds a one-shot run's loop waits for abandoned runs to unwind
T = TypeVar("T")
_TIMEOUTS = frozenset({"timeout", "TimeoutError", "CancelledError"})

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
    app held from it is credited back (see stalls.py): the loop, one more timeout at
    most, so a hung dependency still fails within twice its timeout however busy the
    loop; the GIL (nothing could run at all), in full; and a
    run that timed out after being held up that long is no verdict on the check (its
    own timeouts inside were fooled too): it runs again at once, ``RERUNS`` time. An
    error is a verdict, however long the run was held up. The refresher's runs and
    ``Health.run_once`` both come here."""
    attempt = 0
    while True:
        if check.is_async:
            outcome, held = await _run_async(check, track)
        else:
            outcome, held = await _run_sync(check, pool, queued_within, track)
        timed_out = outcome.status == "fail" and outcome.output in _TIMEOUTS
        if not timed_out or held < HELD_UP or attempt == RERUNS:
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
    held = Held(asyncio.get_running_loop(), check.timeout)
    steps = Steps()
    started = time.monotonic()

    def credit() -> float:  # what others held from this run
        return held.credit(steps.spent)

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
        held.close()
    duration = max(0.0, time.monotonic() - started - taken)
    now = time.time()
    if steps.spent > check.timeout:
        # It held the loop past its own timeout: it fails, and the runs it held up
        # (credited above) do not.
        _abandon(work)
        return blocked(check.timeout, steps.spent, now, duration), taken
    if not work.done() or duration > check.timeout:  # not done, or done past its timeout
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
                    # Credit: the process frozen meanwhile (a thread cannot even start).
                    deadline = submitted + queued_within + lateness.since(mark)
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


def run_to_completion(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a loop of its own (as ``asyncio.run`` does) and close the
    loop after a bounded wait: a run abandoned past its timeout that resists being
    cancelled (a driver that swallows ``CancelledError``) is left behind rather than
    waited for, where ``asyncio.run`` would wait for ever."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        try:
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            if left:
                loop.run_until_complete(asyncio.wait(left, timeout=CLOSE_WAIT))
            for task in left:
                if not task.done():  # abandoned: not worth a warning at exit
                    with contextlib.suppress(AttributeError):
                        task._log_destroy_pending = False  # type: ignore[attr-defined]
            loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), CLOSE_WAIT))
        except (TimeoutError, RuntimeError):
            pass
        finally:
            loop.close()


async def run_all(engine: Engine, max_threads: int) -> Report:
    """Run every check of ``engine`` once, now, concurrently, each bounded by its
    timeout (sync checks on a pool of their own, async checks on this loop), and return
    the full report of these runs. Nothing is recorded: what the process serves, and
    its refresher, are left alone (``Health.run_once``, the ``check`` command)."""
    states = [CheckState(state.check) for state in engine.states()]
    # A thread for every sync check (up to ONCE_THREADS): a one-shot run is a deploy
    # gate, where a check "not started" behind others would be a false fail.
    sync = sum(not state.check.is_async for state in states)
    threads = max(max_threads, min(sync, ONCE_THREADS))
    longest = max((state.check.timeout for state in states), default=0.0)
    queued_within = longest * (1 + sync // threads) + longest
    pool = CheckPool(threads, name="health-check-once")
    try:
        outcomes = await asyncio.gather(
            *(run_once(state.check, pool, queued_within) for state in states)
        )
    finally:
        pool.shutdown()
    for state, outcome in zip(states, outcomes, strict=True):
        state.record(outcome)
    return engine.results.report(states)
