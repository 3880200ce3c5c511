"""The server instance this process belongs to: the master of its workers.

A worker of uvicorn ``--workers``, hypercorn ``-w`` or granian (``multiprocessing``
children) and of gunicorn (forked by its arbiter) belongs to its parent; any other
process is an instance of its own. The start time read from ``/proc`` tells a live
instance from a later process that reused its pid.
"""

from __future__ import annotations

import multiprocessing
import os
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
        pid, _, started = text.strip().partition(" ")
        if not pid.isdigit():
            return None
        return cls(int(pid), started)

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, as another user's process
        return start_time(self.pid) == self.started


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
