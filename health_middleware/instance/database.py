"""State shared by the worker processes of one server instance, in SQLite.

One small database per instance, on a memory-backed filesystem (``/dev/shm`` where
there is one), named for the instance (its master's pid and start time), so a new
server never reads what an old one left, and two servers never share by accident.

- **Only the server's own user can write it.** It lives in the private state folder
  (folder.py), checked again on every open, and a database file that is a link or
  another user's is refused (``folder.Untrusted``): the worker then runs alone.
- **What an instance holds ends with it.** The server instances using a database are
  its members; a worker joining a database none of whose members is alive any more
  (a named instance's, ``Health(instance=...)``, outlives its servers) starts it afresh:
  no result, claim or drain of a server that has gone is taken. A drain belongs to
  the server instance that set it, and counts only while that server lives.

Times in the database are ``time.monotonic()``: on Linux a system-wide clock, the same
for every worker, and immune to the wall clock being set back.

- **Runs are claimed, never locked.** A worker that finds an instance check due
  claims its next run with one short transaction (``due`` moves on, a lease until the
  check's timeout is written); nothing is held while the check runs. A worker killed
  or wedged mid-run costs that run's lease at most: then any worker claims it again.
- **Results are published** as rows with a version number; every worker follows the
  versions (``PRAGMA data_version`` tells it cheaply whether another connection wrote)
  and renders its own snapshot from them.
- **The drain is a row**: whichever worker drains, every worker sees it; it ends with
  the instance, since the database does.

Fork safety: a connection belongs to the process that opened it; after a fork the
child opens its own (nothing opened before a fork is used after it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from health_middleware.config.environment import STATE_DIR
from health_middleware.instance import folder
from health_middleware.instance.folder import verify_file, verify_folder
from health_middleware.instance.master import Instance, start_time

logger = logging.getLogger("health_middleware")

# How long a call may wait for another worker's write: the calls run on the refresher's
# loop (the app's loop under ASGI), which must never wait long. Busy means "not this
# time": the refresher backs off and tries again (see transient()).
BUSY_WAIT = 0.01
# How long joining the instance may wait for the others' writes (once, at start-up).
JOIN_WAIT = 1.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY,
    due REAL NOT NULL,          -- when the next run may start (time.monotonic())
    lease_until REAL NOT NULL,  -- a claimed run's deadline; 0 when none is running
    holder INTEGER NOT NULL     -- the pid that claimed the last run
);
CREATE TABLE IF NOT EXISTS results (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS flags (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL,
    server_pid INTEGER NOT NULL DEFAULT 0,   -- the server instance that set it
    server_started TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS processes (
    pid INTEGER NOT NULL,
    started TEXT NOT NULL,          -- its start time: a reused pid is another process
    server_pid INTEGER NOT NULL,    -- its server instance (the master)
    server_started TEXT NOT NULL,
    stopping INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pid, started)
);
"""


@dataclass(frozen=True, slots=True)
class Claim:
    """A run this worker may start now."""

    name: str
    lease_until: float


class SharedState:
    """One instance's database, as seen by one worker process."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pid = -1
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, used from the refresher's thread
        self._data_version = -1

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        if self._pid != os.getpid():
            # A forked child: nothing of the parent's is used, its lock included (a
            # thread of the parent may have held it at the fork).
            self._lock = threading.Lock()
            self._connection = None
            self._pid = os.getpid()
        with self._lock:
            if self._connection is None:
                self._open()
            assert self._connection is not None
            yield self._connection

    def _open(self) -> None:
        verify_folder(os.path.dirname(self.path) or ".")
        for suffix in ("", "-wal", "-shm"):
            verify_file(self.path + suffix)
        old_umask = os.umask(0o077)  # the workers share a uid: nobody else reads it
        try:
            connection = sqlite3.connect(
                self.path, timeout=BUSY_WAIT, isolation_level=None, check_same_thread=False
            )
        finally:
            os.umask(old_umask)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")  # memory-backed, dies with the instance
        connection.executescript(_SCHEMA)
        self._connection = connection
        self._data_version = -1

    def open(self) -> None:
        """Open the database now, so a problem shows at once (and nothing is read:
        the first ``changed()`` still says yes)."""
        with self._db():
            pass

    # -- runs ------------------------------------------------------------------------------

    def claim(
        self, name: str, now: float, interval: float, lease: float, offset: float = 0.0
    ) -> Claim | None:
        """Claim the run of ``name`` due at ``now``: the next run becomes due one
        ``interval`` later (plus ``offset`` after the instance's first run: its place
        in the interval), and this one's lease lasts ``lease`` seconds. None when
        another worker holds a live lease or the run is not due yet."""
        until = now + lease
        with self._db() as db:
            first = db.execute(
                "INSERT OR IGNORE INTO runs (name, due, lease_until, holder) VALUES (?, ?, 0, 0)",
                (name, now),
            ).rowcount
            cursor = db.execute(
                "UPDATE runs SET due = ?, lease_until = ?, holder = ? "
                "WHERE name = ? AND due <= ? AND lease_until <= ?",
                (now + interval + (offset if first else 0.0), until, os.getpid(), name, now, now),
            )
            return Claim(name, until) if cursor.rowcount == 1 else None

    def next_due(self, name: str) -> float | None:
        with self._db() as db:
            row = db.execute(
                "SELECT max(due, lease_until) FROM runs WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else float(row[0])

    def finish(self, name: str, record: bytes) -> None:
        """Publish a finished run's record and release its lease."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT INTO results (name, version, record) VALUES (?, "
                    "(SELECT coalesce(max(version), 0) + 1 FROM results), ?) "
                    "ON CONFLICT (name) DO UPDATE SET version = excluded.version, "
                    "record = excluded.record",
                    (name, record),
                )
                db.execute(
                    "UPDATE runs SET lease_until = 0 WHERE name = ? AND holder = ?",
                    (name, os.getpid()),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # -- following the others ----------------------------------------------------------------

    def changed(self) -> bool:
        """Whether another connection has written since the last call (cheap)."""
        with self._db() as db:
            version = int(db.execute("PRAGMA data_version").fetchone()[0])
        if version != self._data_version:
            self._data_version = version
            return True
        return False

    def results(self, since: int = 0) -> tuple[int, list[tuple[str, bytes]]]:
        """The records newer than version ``since``, and the newest version."""
        with self._db() as db:
            rows = db.execute(
                "SELECT name, version, record FROM results WHERE version > ? ORDER BY version",
                (since,),
            ).fetchall()
        newest = max((int(r[1]) for r in rows), default=since)
        return newest, [(str(r[0]), bytes(r[2])) for r in rows]

    # -- the instance: its members, its drain, its processes ----------------------------

    def join(self, server: Instance) -> None:
        """This process joins the database as one of ``server``'s (the server itself
        is recorded too: a member for as long as it lives, whichever of its workers
        come and go). Processes that have gone are forgotten; where no member is
        alive any more, the database starts afresh: results, claims and flags of
        servers that have gone are never taken. Busy: retried for up to ``JOIN_WAIT``."""
        me = Instance(os.getpid(), start_time(os.getpid()))
        deadline = time.monotonic() + JOIN_WAIT
        while True:
            try:
                with self._db() as db:
                    self._join(db, me, server)
                return
            except sqlite3.Error as exc:
                if not transient(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(BUSY_WAIT)

    @staticmethod
    def _join(db: sqlite3.Connection, me: Instance, server: Instance) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = db.execute("SELECT pid, started, server_pid, server_started FROM processes")
            for pid, started, server_pid, server_started in rows.fetchall():
                gone = not Instance(int(server_pid), str(server_started)).alive()
                if gone or not Instance(int(pid), str(started)).alive():
                    db.execute(
                        "DELETE FROM processes WHERE pid = ? AND started = ?", (pid, started)
                    )
            if db.execute("SELECT count(*) FROM processes").fetchone()[0] == 0:
                db.execute("DELETE FROM runs")
                db.execute("DELETE FROM results")
                db.execute("DELETE FROM flags")
            for member in (server, me):
                db.execute(
                    "INSERT OR IGNORE INTO processes (pid, started, server_pid, server_started) "
                    "VALUES (?, ?, ?, ?)",
                    (member.pid, member.started, server.pid, server.started),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def set_flag(self, name: str, owner: Instance) -> None:
        """Raise ``name`` for as long as the server instance ``owner`` lives."""
        with self._db() as db:
            db.execute(
                "INSERT INTO flags (name, value, server_pid, server_started) VALUES (?, 1, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = 1, server_pid = excluded.server_pid, "
                "server_started = excluded.server_started",
                (name, owner.pid, owner.started),
            )

    def flag(self, name: str) -> bool:
        """Whether ``name`` is raised by a server instance that is still alive."""
        with self._db() as db:
            row = db.execute(
                "SELECT value, server_pid, server_started FROM flags WHERE name = ?", (name,)
            ).fetchone()
        if row is None or not row[0]:
            return False
        return Instance(int(row[1]), str(row[2])).alive()

    def stopping(self) -> None:
        """Mark this process as stopping (it received the signal to stop)."""
        me = Instance(os.getpid(), start_time(os.getpid()))
        with self._db() as db:
            db.execute(
                "UPDATE processes SET stopping = 1 WHERE pid = ? AND started = ?",
                (me.pid, me.started),
            )

    def workers(self, server: Instance) -> dict[int, bool]:
        """The workers of ``server`` recorded here, each with whether it is stopping
        (the server's own record is not a worker)."""
        with self._db() as db:
            rows = db.execute(
                "SELECT pid, stopping FROM processes WHERE server_pid = ? AND server_started = ? "
                "AND pid <> ?",
                (server.pid, server.started, server.pid),
            ).fetchall()
        return {int(pid): bool(stopping) for pid, stopping in rows}


def join_instance(server: Instance, name: str | None, key: str) -> SharedState | None:
    """The database this process shares with its server instance, joined: the one
    named ``name`` (``Health(instance=...)``), else ``server``'s for ``key`` (one per
    ``Health``); None, said in the log, where it cannot be used (an untrusted state
    folder, a broken database): then the worker runs its checks alone."""
    path = "the state folder"
    try:
        path = folder.named_path(name) if name is not None else folder.database_path(server, key)
        folder.remove_dead()
        state = SharedState(path)
        state.join(server)
    except folder.Untrusted as exc:
        logger.error(
            "refusing the instance's shared state: %s; this worker runs its checks "
            "alone (set %s to a folder of this user's own)",
            exc,
            STATE_DIR,
        )
        return None
    except (OSError, sqlite3.Error) as exc:
        logger.warning(
            "the instance's shared state at %r is unavailable (%s): this worker "
            "runs its checks alone",
            path,
            exc,
        )
        return None
    logger.debug("sharing checks with the other workers of this instance: %s", path)
    return state


def transient(error: sqlite3.Error) -> bool:
    """Whether an error means "busy, try again" (another worker writes) rather than a
    database that cannot be used (corrupt, full, gone): then a worker runs alone."""
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)
