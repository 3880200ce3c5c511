"""A bounded pool of daemon threads for sync checks.

The standard ThreadPoolExecutor joins its threads at interpreter exit, so one hung
check would hang shutdown. Here a hung check holds one thread until it returns;
the pool never grows past ``max_threads``, and exit never waits for it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_Job = tuple[Future[Any], Callable[[], Any]] | None


class DaemonPool:
    def __init__(self, max_threads: int, name: str = "health-check") -> None:
        self._max = max_threads
        self._name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the check pool is shut down")
            self._jobs.put((future, fn))
            if self._idle == 0 and len(self._threads) < self._max:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1
        return future

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn = job
            if future.set_running_or_notify_cancel():
                try:
                    result = fn()
                except BaseException as exc:  # a check may raise anything; the thread survives
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del job, future, fn
            with self._lock:
                self._idle += 1

    def threads(self) -> int:
        return sum(t.is_alive() for t in self._threads)

    def shutdown(self) -> None:
        """Stop idle threads; a thread stuck in a hung check ends when the check does."""
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._jobs.put(None)
