"""Shutdown without a preStop hook: on SIGTERM, fail readiness at once, keep serving for
``shutdown_delay`` seconds, then let the server stop as it would have.

The server's own SIGTERM handler is wrapped, never replaced: after the delay it runs
as if the signal had just arrived. A second SIGTERM during the delay runs it at once,
and SIGINT is left alone, so Ctrl-C still stops at once.

Only a whole server stopping drains and waits. A worker stopped alone while its
server serves on (a gunicorn ``HUP`` reload or uvicorn's ``SIGHUP``, which replace
every worker; one worker killed) stops as its server would have, at once and with
readiness unchanged: its pod is not leaving any balancer, and a drained worker still
accepting on the shared socket would answer 503 for a healthy server. Which case it
is, ``alone()`` tells (see ``Runtime.stops_alone``), on a thread of its own, since it
may wait a moment for the other workers' signals.

Two kinds of handler are wrapped, both read where the server installed them before
our start (lifespan startup, or the worker's first request or boot):

- a Python handler (``signal.signal``): uvicorn, gunicorn's workers. After the delay
  the process signals itself again, which also wakes a worker blocked in ``select``;
- an asyncio handler (``loop.add_signal_handler``): hypercorn, gunicorn's ``-k asgi``.
  After the delay the server's callback runs on its loop.

Anything else (the default action, or a handler outside Python such as granian's) is
left as it is: there, use the pre-stop endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from health_middleware.instance import master
from health_middleware.instance.database import SharedState

logger = logging.getLogger("health_middleware")

DUPLICATE = 1.0  # seconds within which a second SIGTERM is the same stop signalled twice
_Handler = Callable[[int, FrameType | None], Any]


class DelayedExit:
    """Wraps this process's SIGTERM handler once; ``on_term`` drains this process and
    ``alone`` says whether it stops alone, its server serving on."""

    def __init__(
        self, delay: float, on_term: Callable[[], None], alone: Callable[[], bool]
    ) -> None:
        self.delay = delay
        self._on_term = on_term
        self._alone = alone
        self._pid = -1  # the process the wrapper is installed in
        self._terms = 0
        self._first_at = 0.0  # time.monotonic() of the first SIGTERM
        self._released = False
        self._warned = -1  # the process where installing was refused (logged once)

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> bool:
        """Wrap the current SIGTERM handler (from the main thread only); return
        whether there was one this module knows how to wrap."""
        if self._pid == os.getpid():
            return True
        if threading.current_thread() is not threading.main_thread():
            if self._warned != os.getpid():
                self._warned = os.getpid()
                logger.warning(
                    "shutdown_delay is not in effect in this process: its runtime started "
                    "on a thread other than the main one (a first request served by a "
                    "worker thread), where SIGTERM cannot be wrapped; start it at boot "
                    "(the gunicorn hook, ASGI lifespan) or use the pre-stop endpoint"
                )
            return False
        self._terms, self._released = 0, False
        asyncio_handle = _asyncio_handler(loop)
        if asyncio_handle is not None and loop is not None:
            self._wrap_asyncio(loop, asyncio_handle)
        else:
            current = signal.getsignal(signal.SIGTERM)
            if not callable(current):
                if self._warned != os.getpid():
                    self._warned = os.getpid()
                    logger.warning(
                        "shutdown_delay is not in effect in this process: SIGTERM has no "
                        "Python handler here (%r; granian handles signals outside "
                        "Python): use the pre-stop endpoint to drain before it stops",
                        current,
                    )
                return False
            self._wrap_python(current)
        self._pid = os.getpid()
        return True

    def _decide(self, release: Callable[[], object]) -> None:
        """After the first SIGTERM (on a thread of its own): release at once a worker
        stopped alone; else drain, and release after the delay."""
        started = time.monotonic()
        try:
            alone = self._alone()
        except Exception:
            logger.exception("shutdown_delay: could not tell whether the server stops too")
            alone = False
        if alone:
            logger.warning(
                "SIGTERM: this worker stops alone (its server serves on): it stops now, "
                "readiness unchanged"
            )
            release()
            return
        logger.warning(
            "SIGTERM: readiness fails now; the server stops in %.1f s (send SIGTERM "
            "again, or SIGINT, to stop at once)",
            self.delay,
        )
        try:
            self._on_term()
        except Exception:
            logger.exception("draining on SIGTERM failed")
        time.sleep(max(0.0, self.delay - (time.monotonic() - started)))
        release()

    def _first(self, release: Callable[[], object]) -> None:
        thread = threading.Thread(
            target=self._decide, args=(release,), name="health-shutdown", daemon=True
        )
        thread.start()

    def _which(self) -> str:
        """Which SIGTERM this is: the ``first`` (drain, then the delay), ``again``
        (stop at once: a second one, or the one sent when the delay has run out), or
        the ``same`` stop signalled twice within ``DUPLICATE`` seconds (to the
        process group and again by its master, as systemd and dumb-init do): ignored."""
        now = time.monotonic()
        if self._released:
            return "again"
        if self._terms == 0:
            self._terms, self._first_at = 1, now
            return "first"
        if now - self._first_at < DUPLICATE:
            return "same"
        self._terms += 1
        self._released = True
        return "again"

    def _wrap_python(self, original: _Handler) -> None:
        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            which = self._which()
            if which == "again":
                original(signum, frame)
            elif which == "first":
                self._first(self._release_python)

        signal.signal(signal.SIGTERM, on_sigterm)

    def _release_python(self) -> None:
        if not self._released:
            self._released = True
            os.kill(os.getpid(), signal.SIGTERM)  # runs the server's handler, wakes select()

    def _wrap_asyncio(self, loop: asyncio.AbstractEventLoop, original: asyncio.Handle) -> None:
        def on_sigterm() -> None:
            which = self._which()
            if which == "again":
                original._run()
            elif which == "first":
                self._first(lambda: loop.call_soon_threadsafe(on_release))

        def on_release() -> None:
            if not self._released:
                self._released = True
                original._run()

        loop.add_signal_handler(signal.SIGTERM, on_sigterm)


def _asyncio_handler(loop: asyncio.AbstractEventLoop | None) -> asyncio.Handle | None:
    """The callback a server gave ``loop.add_signal_handler`` for SIGTERM, if any.
    asyncio keeps it in a private table; read it defensively."""
    if loop is None:
        return None
    table = getattr(loop, "_signal_handlers", None)
    if not isinstance(table, dict):
        return None
    handle = table.get(signal.SIGTERM)
    return handle if isinstance(handle, asyncio.Handle) else None


def in_gunicorn_worker() -> bool:
    """Whether this is a gunicorn worker whose SIGTERM handler is in place (its app is
    loaded after the handlers are set): there the wrapper can go in as the app is
    made, before any request, whichever thread will serve. In the master (``--preload``)
    the handler belongs to the arbiter, and nothing is wrapped."""
    owner = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return type(owner).__module__.startswith("gunicorn.workers")


# How long a worker told to stop waits for its siblings' signals before it looks at
# which of them stop too (a server stopping signals them all within a moment).
SETTLE = 0.3


def stops_alone(shared: SharedState | None) -> bool:
    """On SIGTERM: whether this worker stops alone while its server serves on (a
    reload replacing the workers, a binary upgrade, one worker killed), rather than
    with the whole server: does a process that is not stopping still hold the
    listening socket this worker shares? A process that is its own server stops with
    it; so does a worker whose instance's database cannot be used, where its
    master's sockets do not answer the question (its siblings' signals cannot be told
    apart then: it drains).

    - gunicorn's arbiter closes its listeners before it stops its workers and keeps
      them on a reload or when one worker is killed: it still holding the socket
      (looked at again after ``SETTLE``: a SIGTERM to the whole process group reaches
      the workers as the arbiter is only beginning to stop) means the server serves
      on. A ``multiprocessing`` parent (uvicorn) keeps its socket through a stop: it
      does not count.
    - Else this worker marks itself stopping in the instance's database and, once the
      server's other signals have had time to arrive (``SETTLE``), looks at the other
      holders: one that is no child of its master belongs to another server (a
      gunicorn ``USR2`` upgrade); a sibling not recorded as stopping is serving, or a
      replacement still starting (a reload forks them before stopping the old
      workers). Under gunicorn every child of the arbiter stands for a holder: a
      worker that changed user (``--user``) is not dumpable, and its descriptors
      cannot be read even by its siblings."""
    owner = master.current()
    if owner.pid == os.getpid():
        return False
    gunicorn = "gunicorn.workers.base" in sys.modules
    sockets = master.listening_sockets()
    if gunicorn and sockets and owner.pid in master.holders(sockets):
        time.sleep(SETTLE)
        if owner.pid in master.holders(sockets):
            return True
    if shared is None:
        return False
    try:
        shared.stopping()
        time.sleep(SETTLE)
        stopping = shared.workers(owner)
    except sqlite3.Error as exc:
        logger.warning("could not tell whether the other workers stop too: %s", exc)
        return False
    holding = master.holders(sockets) if sockets else {}
    if gunicorn:
        holding.update(dict.fromkeys(master.children(owner.pid) - {os.getpid()}, owner.pid))
    elif not sockets:
        return any(not gone for pid, gone in stopping.items() if pid != os.getpid())
    for pid, parent in holding.items():
        if pid == owner.pid:
            if gunicorn:
                return True  # the arbiter keeps its listeners: a reload
            continue  # a multiprocessing parent keeps its socket through a stop
        if parent != owner.pid or not stopping.get(pid, False):
            return True  # another server's, or a sibling serving or starting
    return False
