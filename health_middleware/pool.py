"""A bounded pool of daemon threads for sync checks.

The standard ThreadPoolExecutor joins its threads at interpreter exit, so one hung
check would hang shutdown; these threads are daemons. A hung check holds its thread
until it returns (it is never started again meanwhile: single-flight), and the pool
never grows past ``max_threads``.

So that hung checks cannot starve the others, runs are admitted by trust: a run of a
check none of whose runs has ever come back from its thread is *untrusted*, and
untrusted runs may hold at most ``max_threads - reserve`` threads at once (the count
includes runs that hang); further untrusted runs wait for one of those to return. The
reserve stays for checks that have returned before: a check that was slow once keeps
its trust, and one that hangs now holds one thread at most (single-flight). A run that
waits past its timeout is cancelled without ever starting, and reported as such.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_Job = tuple[Future[Any], Callable[[], Any], bool] | None


class DaemonPool:
    def __init__(self, max_threads: int, name: str = "health-check") -> None:
        self._max = max_threads
        self.untrusted_limit = max(1, max_threads - max(1, max_threads // 4))
        self._name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._untrusted = 0  # untrusted runs queued or running (hung ones included)
        self._waiting: deque[tuple[Future[Any], Callable[[], Any]]] = deque()
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[[], Any], trusted: bool = True) -> Future[Any]:
        """Run ``fn`` on a pool thread; an untrusted run may wait for an admission."""
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the check pool is shut down")
            if trusted:
                self._start((future, fn, True))
            elif self._untrusted < self.untrusted_limit:
                self._untrusted += 1
                self._start((future, fn, False))
            else:
                self._waiting.append((future, fn))
        return future

    def _start(self, job: _Job) -> None:
        """Queue a job for the threads (the lock is held)."""
        self._jobs.put(job)
        if self._idle == 0 and len(self._threads) < self._max:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        else:
            self._idle = max(0, self._idle - 1)

    def _admit_waiting(self) -> None:
        """An untrusted run returned: admit the next waiting one (the lock is held)."""
        while self._waiting:
            future, fn = self._waiting.popleft()
            if not future.cancelled():  # one that waited past its timeout is gone
                self._untrusted += 1
                self._start((future, fn, False))
                return

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, trusted = job
            error: BaseException | None = None
            result: Any = None
            started = future.set_running_or_notify_cancel()
            if started:
                try:
                    result = fn()
                except BaseException as exc:  # a check may raise anything; the thread survives
                    error = exc
            # Idle again *before* the result is published: the refresher may submit the
            # next run as soon as it sees the result, and must find this thread free
            # rather than start another.
            with self._lock:
                self._idle += 1
                if not trusted:
                    self._untrusted -= 1
                    self._admit_waiting()
            if started:
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(error)
            del job, future, fn, result, error

    def threads(self) -> int:
        return sum(t.is_alive() for t in self._threads)

    def held_by_untrusted(self) -> int:
        return self._untrusted

    def shutdown(self) -> None:
        """Stop idle threads; a thread stuck in a hung check ends when the check does."""
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._jobs.put(None)
