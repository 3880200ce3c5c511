"""Sharing: this process's part in its server instance. It follows what the other
workers publish in the instance's database (their results, the drain), leaves the
database when it cannot be used (then this worker runs its checks alone), and drains:
this process, the instance (its database's flag) and, where configured, every server
sharing ``drain_file``.

The instance's drain is written on a thread of its own, never on the caller's: a busy
database is retried for up to half a second, and the caller may be the app's event
loop (a pre-stop request).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from health_middleware.engine.drain import Drain
from health_middleware.engine.results import Results
from health_middleware.instance import drainfile, master
from health_middleware.instance.database import SharedState, transient

logger = logging.getLogger("health_middleware")

DRAINING = "draining"  # the instance's flag
DRAIN_WAIT = 0.5  # seconds a busy database is retried for the instance's drain


class Sharing:
    def __init__(
        self,
        results: Results,
        drain: Drain,
        publish: Callable[[], None],
        *,
        drain_file: str | None,
    ) -> None:
        self._results = results
        self._drain = drain
        self._publish = publish
        self.drain_file = drain_file
        self.reset()

    def reset(self) -> None:
        """Alone, knowing nothing (at start, and in a forked child)."""
        self.shared: SharedState | None = None  # the instance's database; None: alone
        self._version = 0  # the newest shared result this process has taken

    # -- following the instance -----------------------------------------------------

    def join(self, shared: SharedState | None) -> None:
        """Share with the instance's other workers through ``shared`` (None: alone),
        taking what the instance knows at once, so the first answer is the
        instance's."""
        self.shared = shared
        if shared is not None:
            try:
                self.follow()
            except sqlite3.Error as exc:
                logger.warning("could not read the instance's state: %s", exc)

    def follow(self) -> bool:
        """Take the results and the drain the other workers of this instance
        published since the last call; return whether anything changed."""
        shared = self.shared
        if shared is None or not shared.changed():
            return False
        self._version, rows = shared.results(self._version)
        changed = self._results.adopt(rows)
        draining = shared.flag(DRAINING)
        if draining != self._drain.instance:
            self._drain.instance, changed = draining, True
            if draining:
                logger.warning("draining: another worker of this instance drained it")
        return changed

    def leave(self, error: Exception) -> None:
        """The instance's database cannot be used: run alone from now on."""
        if self.shared is not None:
            logger.warning(
                "the instance's shared state failed (%s): this worker runs its checks "
                "alone from now on",
                error,
            )
            self.shared = None

    def follow_drain_file(self) -> None:
        """Drain while ``drain_file`` names an instance that is still alive; a file
        left by an instance that has gone is ignored; never raises."""
        if self.drain_file is None:
            return
        try:
            owner = drainfile.owner(self.drain_file)
        except Exception as exc:  # a garbled file must never keep the snapshot from renewing
            logger.debug("could not read drain_file %r: %s", self.drain_file, exc)
            owner = None
        if owner != self._drain.file:
            if owner is not None:
                logger.warning("draining: drain_file %r names a live instance", self.drain_file)
            self._drain.file = owner
            self._publish()

    # -- draining -------------------------------------------------------------------

    def drain(self) -> threading.Thread | None:
        """Drain this process now, and on a thread of its own, returned (join it to
        know the drain written), the server instance (every worker, through its
        database) and every server sharing ``drain_file``."""
        first = not self._drain.process
        self.drain_process()
        shared, path = self.shared, self.drain_file if first else None
        if shared is None and path is None:
            return None
        thread = threading.Thread(target=_drain_instance, args=(shared, path), name="health-drain")
        thread.start()
        return thread

    def drain_process(self) -> None:
        """Drain this process alone: a worker that stops (a recycle, a lifespan
        shutdown) leaves its siblings and successors serving."""
        if not self._drain.process:
            self._drain.process = True
            logger.info("draining: readiness now fails; liveness is unchanged")
        self._publish()


def _drain_instance(shared: SharedState | None, drain_file: str | None) -> None:
    """Set the instance's drain flag (rare and important: a busy database is retried
    for up to DRAIN_WAIT), and write the drain file."""
    server = master.current()
    deadline = time.monotonic() + DRAIN_WAIT
    while shared is not None:
        try:
            shared.set_flag(DRAINING, server)
            break
        except sqlite3.Error as exc:
            if not transient(exc) or time.monotonic() > deadline:
                logger.error("could not drain the other workers: %s", exc)
                break
            time.sleep(0.01)
    if drain_file is not None:
        try:
            drainfile.write(drain_file, server)
        except OSError as exc:
            logger.error("could not write drain_file %r: %s", drain_file, exc)
