"""The server instance this process belongs to: the master of its workers.

A worker of uvicorn ``--workers``, hypercorn ``-w`` or granian (``multiprocessing``
children) and of gunicorn (forked by its arbiter) belongs to its parent; any other
process is an instance of its own. The start time read from ``/proc`` tells a live
instance from a later process that reused its pid.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sys
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Instance:
    pid: int
    started: str  # the process's start time in clock ticks since boot, "" where unknown

    def encode(self) -> str:
        return f"{self.pid} {self.started}\n"

    @classmethod
    def decode(cls, text: str) -> Instance | None:
        """The instance a drain file names, or None for anything else (the file is
        read as text another process may have garbled)."""
        match = _ENCODED.fullmatch(text.strip())
        if match is None or int(match[1]) <= 0:
            return None
        return cls(int(match[1]), match[2])

    def alive(self) -> bool:
        if self.pid <= 0:  # 0 and negative pids address process groups, not a process
            return False
        another_users = False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            another_users = True  # it exists, as another user's process
        except (OverflowError, ValueError, OSError):
            return False
        started = start_time(self.pid)
        if not started:
            # Another user's process may be hidden from this one (/proc mounted with
            # hidepid): it exists, and its start time cannot be compared. Else, where
            # start times exist, a process without one is gone.
            return another_users or not os.path.isdir("/proc")
        return started == self.started


_ENCODED = re.compile(r"([0-9]{1,10}) ([0-9]{1,20})", re.ASCII)


def start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()  # field 22, counted after "pid (comm)"
    except (OSError, IndexError):
        return ""


def current() -> Instance:
    """The instance of the calling process."""
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid:
        pid = parent.pid
    elif "gunicorn.workers.base" in sys.modules:
        pid = os.getppid()  # a gunicorn worker: its arbiter
    else:
        pid = os.getpid()
    return Instance(pid, start_time(pid))


def listening_sockets() -> set[int]:
    """The inodes of the listening sockets this process holds (none where /proc
    cannot be read)."""
    try:
        return _listening_inodes() & _socket_inodes("self")
    except OSError:
        return set()


def holders(sockets: set[int]) -> dict[int, int]:
    """The other processes holding any of ``sockets`` open, as ``{pid: parent pid}``:
    every process whose descriptors this one may read (its own user's, or all as
    root); the others are not seen."""
    found: dict[int, int] = {}
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if _socket_inodes(entry) & sockets:
                found[int(entry)] = parent_of(int(entry))
        except OSError:  # another user's, or gone meanwhile
            continue
    return found


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (read from every process's ``stat``,
    which any user may read, even where their descriptors are not)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and parent_of(int(entry)) == pid:
            found.add(int(entry))
    return found


def parent_of(pid: int) -> int:
    """The parent of process ``pid`` (0 where unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _socket_inodes(pid: str) -> set[int]:
    found: set[int] = set()
    folder = f"/proc/{pid}/fd"
    for descriptor in os.listdir(folder):
        try:
            link = os.readlink(f"{folder}/{descriptor}")
        except OSError:  # closed meanwhile
            continue
        if link.startswith("socket:[") and link.endswith("]"):
            found.add(int(link[8:-1]))
    return found


_ACCEPTING = 0x10000  # __SO_ACCEPTCON: a listening unix socket


def _listening_inodes() -> set[int]:
    """The inodes of the listening sockets of this network namespace."""
    found: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                rows = [line.split() for line in list(lines)[1:]]
        except FileNotFoundError:  # no IPv6
            continue
        found.update(int(row[9]) for row in rows if len(row) > 9 and row[3] == "0A")
    with open("/proc/net/unix") as lines:
        for row in (line.split() for line in list(lines)[1:]):
            if len(row) > 6 and int(row[3], 16) & _ACCEPTING:
                found.add(int(row[6]))
    return found
