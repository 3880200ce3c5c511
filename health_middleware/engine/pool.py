"""A bounded pool of daemon threads for sync checks.

The standard ThreadPoolExecutor joins its threads at interpreter exit, so one hung
check would hang shutdown; these threads are daemons.

At most ``max_threads`` threads run checks that are within their timeout. A run past
its timeout is *abandoned* by the refresher: it gives its place back at once, so a
hung check never takes a place from the others, while its thread stays with it until
the check returns (nothing can stop a Python thread). A check is never started again
while a run of it is in flight (single-flight), so each hung check holds one thread at
most: the threads are bounded by ``max_threads`` plus the number of checks hanging
right now. A run still queued when it is abandoned is removed from the queue, so the
queue never holds more than one run per check. A run's timeout counts from when a
thread takes it (``started_at``): a check queued behind slow ones is not failed for
their slowness.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from health_middleware.engine.stalls import gil_wait, gil_waits


class _Job:
    __slots__ = ("abandoned", "fn", "future", "native_id", "started", "waits")

    def __init__(self, future: Future[Any], fn: Callable[[], Any]) -> None:
        self.future = future
        self.fn = fn
        self.abandoned = False
        self.started: float | None = None  # time.monotonic() when a thread took it
        self.native_id: int | None = None  # the thread running it
        self.waits: int | None = None  # its thread's GIL waits when it began (stalls.py)


class CheckPool:
    def __init__(self, max_threads: int, name: str = "health-check") -> None:
        self.max_threads = max_threads
        self._name = name
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._queue: deque[_Job] = deque()
        self._jobs: dict[Future[Any], _Job] = {}  # queued or running
        self._places = 0  # threads that count against max_threads (idle or in time)
        self._idle = 0
        self._spawned = 0
        self._closed = False
        self._threads: set[threading.Thread] = set()
        self._busy: dict[threading.Thread, _Job] = {}  # what each thread runs now

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn`` on a pool thread; it waits in the queue while every place is taken."""
        future: Future[Any] = Future()
        job = _Job(future, fn)
        with self._lock:
            if self._closed:
                raise RuntimeError("the check pool is shut down")
            self._queue.append(job)
            self._jobs[future] = job
            self._dispatch()
        return future

    def abandon(self, future: Future[Any]) -> bool:
        """The refresher gave up on this run. Return True when it had started (its
        thread is left to finish it, outside the pool's count), False when it was
        still queued (it is removed and cancelled, never to start)."""
        with self._lock:
            job = self._jobs.pop(future, None)
            if job is None:
                return future.running() or future.done()
            if job in self._queue:
                self._queue.remove(job)
                future.cancel()
                return False
            job.abandoned = True
            self._places -= 1  # its thread no longer counts
            self._dispatch()
            return True

    def queued(self) -> int:
        return len(self._queue)

    def started_at(self, future: Future[Any]) -> float | None:
        """When a thread began this run (``time.monotonic()``), None while queued."""
        job = self._jobs.get(future)
        return None if job is None else job.started

    def gil_wait(self, future: Future[Any]) -> float:
        """How long this run's thread has waited for the GIL so far (0 where unknown:
        queued, finished, or no count on this platform; see ``stalls.gil_waits``)."""
        job = self._jobs.get(future)
        if job is None or job.native_id is None:
            return 0.0
        return gil_wait(job.waits, gil_waits(job.native_id))

    def _dispatch(self) -> None:
        """Wake an idle thread for the queue, or start one if a place is free (the
        lock is held)."""
        if not self._queue:
            return
        if self._idle:
            self._idle -= 1
            self._wakeup.notify()
        elif self._places < self.max_threads:
            self._places += 1
            self._spawned += 1
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{self._spawned}", daemon=True
            )
            self._threads.add(thread)
            thread.start()

    def _work(self) -> None:
        self._lock.acquire()
        try:
            while True:
                while not self._queue and not self._closed:
                    self._idle += 1
                    self._wakeup.wait()  # _dispatch took the idle count back
                if not self._queue:  # closed, nothing left to run
                    self._places -= 1
                    return
                job = self._queue.popleft()
                me = threading.current_thread()
                self._busy[me] = job
                self._lock.release()
                try:
                    self._run(job)
                finally:
                    self._lock.acquire()
                del self._busy[me]
                self._jobs.pop(job.future, None)
                if job.abandoned:
                    # Rejoin the pool only where a place is free; else this thread ends.
                    if self._places >= self.max_threads or self._closed:
                        return
                    self._places += 1
                del job
        finally:
            self._threads.discard(threading.current_thread())
            self._lock.release()

    @staticmethod
    def _run(job: _Job) -> None:
        future = job.future
        if not future.set_running_or_notify_cancel():
            return
        job.native_id, job.waits = threading.get_native_id(), gil_waits()
        job.started = time.monotonic()
        try:
            result = job.fn()
        except BaseException as exc:  # a check may raise anything; the thread survives
            future.set_exception(exc)
        else:
            future.set_result(result)

    def join(self, timeout: float) -> None:
        """After ``shutdown``: wait up to ``timeout`` seconds for the threads to end,
        except those held by a hung check (one past its timeout, abandoned), which end
        only when it returns."""
        deadline = time.monotonic() + timeout
        with self._lock:
            waited = [
                thread
                for thread in self._threads
                if not ((job := self._busy.get(thread)) is not None and job.abandoned)
            ]
        for thread in waited:
            thread.join(max(0.0, deadline - time.monotonic()))

    def shutdown(self) -> None:
        """Stop idle threads; a thread stuck in a hung check ends when the check does."""
        with self._lock:
            self._closed = True
            for job in self._queue:
                job.future.cancel()
            self._queue.clear()
            self._jobs.clear()
            self._idle = 0
            self._wakeup.notify_all()
