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
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, as another user's process
        except (OverflowError, ValueError, OSError):
            return False
        started = start_time(self.pid)
        if not started and os.path.isdir("/proc"):
            return False  # where start times exist, a process without one is gone
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
