"""The time a check had: what another check, or the app, took from it does not count.

A check's timeout bounds *its own* time. When something else holds what a run needs,
every run in flight is held up with it: counted by the wall clock, each would time
out, and the healthy ones would be failed for another's fault. What can be held:

- **the event loop**, by an ``async def`` check that calls blocking code, or the
  app's own blocking code: async runs cannot make progress;
- **the interpreter** (the GIL), by a sync check or anything else running a long C
  call that never releases it (``sum(range(10**9))``, a catastrophic regular
  expression): no thread runs, the loop's included.

``Lateness`` measures each as time lost: how late a short periodic wake-up runs,
while runs are in flight only (an idle refresher costs nothing), the wake-up overdue
at the moment of asking included (a verdict taken the moment the hold ends sees it).
``loop_lateness(loop)`` wakes on the event loop; ``thread_lateness()`` on a thread of
its own, which only the GIL (or the process being stopped) can hold up.

A run's own share of a hold is not credited back. An ``async def`` check's steps on
the loop are timed one by one (``Steps``): the loop's lateness less its own steps is
its credit. A sync check is credited only the time its thread waited for the GIL
(``gil_waits``): a thread waiting for the GIL wakes once per switch interval (5 ms) to
ask for it, and Linux counts each wake-up as a voluntary context switch of that
thread, while the thread holding the GIL (computing, or blocked in a C call that
keeps it) makes none; so the holder gets no credit and the threads it held up do.
Where that count cannot be read, a sync check gets no credit. The credit moves the
run's deadline by that much, and the duration it reports leaves it out. The run
that held the loop or the GIL past its own timeout is the one that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any

TICK = 0.02  # seconds between wake-ups while runs are in flight
LINGER = 5.0  # seconds the thread of ThreadLateness stays after the last run


class Lateness:
    """How late a periodic wake-up has run, in total, while runs are in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._late = 0.0  # seconds the wake-ups ran late, in total
        self._due: float | None = None  # time.monotonic() of the next wake-up, if on
        self._runs = 0

    def enter(self) -> float:
        """A run starts: wake up while any is in flight. Returns the mark to give
        ``since``."""
        with self._lock:
            self._runs += 1
            if self._due is None:
                self._due = time.monotonic() + TICK
                self._start()
        return self.now()

    def leave(self) -> None:
        with self._lock:
            self._runs -= 1
            if self._runs <= 0:
                self._runs, self._due = 0, None
                self._stop()

    def now(self) -> float:
        """The lateness so far, the wake-up overdue at this moment included."""
        late, due = self._late, self._due
        return late + (0.0 if due is None else max(0.0, time.monotonic() - due))

    def since(self, mark: float) -> float:
        """The lateness since ``mark`` (a value of ``enter`` or ``now``)."""
        return max(0.0, self.now() - mark)

    def _woke(self) -> bool:
        """Count a wake-up's lateness and set the next; False once nothing is in
        flight (the lock is held)."""
        due = self._due
        if due is None:
            return False
        now = time.monotonic()
        self._late += max(0.0, now - due)
        self._due = now + TICK
        return True

    def _start(self) -> None:
        """Begin waking up (the lock is held)."""

    def _stop(self) -> None:
        """Stop waking up (the lock is held)."""


class LoopLateness(Lateness):
    """Wakes up on an event loop: its lateness is the time the loop was held."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._handle: asyncio.TimerHandle | None = None

    def _start(self) -> None:
        self._handle = self._loop.call_later(TICK, self._tick)

    def _stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        with self._lock:
            if self._woke():
                self._start()


class ThreadLateness(Lateness):
    """Wakes up on a daemon thread of its own: its lateness is the time no thread
    could run (the GIL held in a long C call, or the process stopped). The thread
    stays for ``LINGER`` seconds after the last run (checks every few seconds keep
    one thread, not one a run) and ends sooner when ``join`` asks."""

    def __init__(self) -> None:
        super().__init__()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()  # set: look now (a run started, or stop)
        self._ending = False  # join(): end as soon as nothing is in flight

    def _start(self) -> None:
        self._ending = False
        if self._thread is None:  # else it is still waiting: it carries on
            self._thread = threading.Thread(target=self._run, name="health-stalls", daemon=True)
            self._thread.start()
        else:
            self._wake.set()

    def _run(self) -> None:
        idle_since: float | None = None
        while True:
            # Waiting releases the GIL; waking up needs it. Idle, it waits longer.
            self._wake.wait(TICK if idle_since is None else LINGER)
            with self._lock:
                self._wake.clear()
                if self._woke():
                    idle_since = None
                    continue
                now = time.monotonic()
                idle_since = now if idle_since is None else idle_since
                if self._ending or now - idle_since >= LINGER:
                    self._thread = None
                    return

    def join(self, timeout: float) -> None:
        """End the thread where no run is in flight, and wait for it (bounded)."""
        with self._lock:
            thread = self._thread
            if thread is None or self._runs:
                return
            self._ending = True
            self._wake.set()
        thread.join(timeout)


def gil_waits(native_id: int | None = None) -> int | None:
    """How many times a thread has woken up to ask for the GIL, more or less: its
    voluntary context switches (the calling thread's from ``getrusage``, or those of
    this process's thread ``native_id`` from Linux's ``/proc``); None where they cannot
    be read. Multiplied by ``sys.getswitchinterval()``, a count's growth estimates the
    time it waited."""
    if native_id is None and _RUSAGE_THREAD is not None:
        return resource.getrusage(_RUSAGE_THREAD).ru_nvcsw
    thread = "thread-self" if native_id is None else f"self/task/{native_id}"
    try:
        with open(f"/proc/{thread}/status", "rb") as status:
            for line in status:
                if line.startswith(b"voluntary_ctxt_switches:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


_RUSAGE_THREAD: int | None = getattr(resource, "RUSAGE_THREAD", None)


def gil_wait(before: int | None, after: int | None) -> float:
    """The time a thread waited for the GIL between two ``gil_waits`` counts (0 where
    either is unknown). One wake-up is not counted: a thread that blocked once (a
    sleep, a read) and took the GIL back at once switched once without waiting."""
    if before is None or after is None:
        return 0.0
    return max(0, after - before - 1) * sys.getswitchinterval()


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLateness] = (
    weakref.WeakKeyDictionary()
)
_threads: dict[int, ThreadLateness] = {}  # by pid: a forked child starts its own


def loop_lateness(loop: asyncio.AbstractEventLoop) -> LoopLateness:
    """The lateness of ``loop`` (one per loop, shared by every refresher on it)."""
    found = _loops.get(loop)
    if found is None:
        found = _loops[loop] = LoopLateness(loop)
    return found


def thread_lateness() -> ThreadLateness:
    """This process's thread lateness."""
    pid = os.getpid()
    found = _threads.get(pid)
    if found is None:
        _threads.clear()  # a parent's, inherited by a fork: its thread is not here
        found = _threads[pid] = ThreadLateness()
    return found


class Steps:
    """The time an ``async def`` check's own steps take on the loop: ``await
    steps.run(fn)`` calls ``fn()`` and awaits what it returns step by step, adding
    each step's duration (the call included), less its waits for the GIL, to
    ``spent``."""

    __slots__ = ("spent",)

    def __init__(self) -> None:
        self.spent = 0.0

    def run(self, fn: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        return _Stepped(self, fn)

    def _drive(self, fn: Callable[[], Awaitable[Any]]) -> Generator[Any, Any, Any]:
        started, waits = time.monotonic(), gil_waits()
        try:
            iterator = fn().__await__()
        finally:
            self._count(started, waits)
        send, throw = getattr(iterator, "send", None), getattr(iterator, "throw", None)
        if send is None or throw is None:  # an awaitable that cannot be stepped into
            return (yield from iterator)
        value: Any = None
        error: BaseException | None = None
        while True:
            started, waits = time.monotonic(), gil_waits()
            try:
                yielded = send(value) if error is None else throw(error)
            except StopIteration as stop:
                return stop.value
            finally:
                self._count(started, waits)
            try:
                value, error = (yield yielded), None
            except GeneratorExit:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
                raise
            except BaseException as exc:  # a cancellation, or an error thrown in
                value, error = None, exc

    def _count(self, started: float, waits: int | None) -> None:
        """Add a step's time, less what it spent waiting for the GIL another thread
        held (that is not the check's own doing)."""
        took = time.monotonic() - started
        if took > TICK:  # a long step: did it run, or wait for the GIL?
            took = max(0.0, took - gil_wait(waits, gil_waits()))
        self.spent += took


class _Stepped:
    __slots__ = ("_fn", "_steps")

    def __init__(self, steps: Steps, fn: Callable[[], Awaitable[Any]]) -> None:
        self._steps, self._fn = steps, fn

    def __await__(self) -> Generator[Any, Any, Any]:
        return self._steps._drive(self._fn)


class Held:
    """The time others held what an async run needs, since it began: the event loop
    alone (the app's or another check's blocking code, the GIL free), credited up to
    ``cap`` (a loop held for ever must not keep a hung check green), and the whole
    process (the GIL held, no thread running: nothing could be observed then), credited
    in full. Call ``close`` when the run ends."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cap: float) -> None:
        self._loop, self._threads = loop_lateness(loop), thread_lateness()
        self._cap = cap
        self._loop_mark, self._thread_mark = self._loop.enter(), self._threads.enter()

    def credit(self, own: float = 0.0) -> float:
        """The credit, ``own`` (the run's own steps on the loop) left out."""
        held = self._loop.since(self._loop_mark)
        frozen = min(held, self._threads.since(self._thread_mark))
        return max(0.0, min(self._cap, held - frozen) + frozen - own)

    def close(self) -> None:
        self._loop.leave()
        self._threads.leave()


@contextlib.asynccontextmanager
async def within(seconds: float) -> AsyncIterator[None]:
    """``asyncio.timeout(seconds)`` counting the run's own time only: while others
    hold the loop or the GIL, the deadline moves by as much (see ``Held``). The
    built-in checks bound their I/O with it, so a check held up by another's blocking
    does not time out inside for it."""
    loop = asyncio.get_running_loop()
    held = Held(loop, seconds)
    started = time.monotonic()
    handle: asyncio.TimerHandle | None = None
    try:
        async with asyncio.timeout(None) as bound:

            def look() -> None:
                nonlocal handle
                left = started + seconds + held.credit() - time.monotonic()
                if left <= 0:
                    bound.reschedule(loop.time())  # expire now
                else:
                    handle = loop.call_later(left, look)

            handle = loop.call_later(seconds, look)
            yield
    finally:
        if handle is not None:
            handle.cancel()
        held.close()
