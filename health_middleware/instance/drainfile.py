"""``drain_file``: a drain shared by servers through a file (``Health(drain_file=...)``).

The file names the server instance that drained (``instance.Instance.encode``), and
counts only while that instance lives. It is trusted only when it is this user's own
regular file: the path is the user's choice and may sit in a folder others can write
(``/tmp``), where a file someone else planted, or a link, must not drain the service.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile

from health_middleware.instance.master import Instance

logger = logging.getLogger("health_middleware")

_refused: set[tuple[str, str]] = set()  # (path, why): each logged once


def owner(path: str) -> Instance | None:
    """The live instance the drain file at ``path`` names, or None (no file, a file
    that names nothing alive, or one that is not this user's own: logged once)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a link
        _refuse(path, f"it cannot be opened without following a link ({exc.strerror})")
        return None
    with os.fdopen(descriptor, "rb") as marker:
        found = os.fstat(marker.fileno())
        uid = os.geteuid() if hasattr(os, "geteuid") else found.st_uid
        if not stat.S_ISREG(found.st_mode) or found.st_uid not in (uid, 0):
            _refuse(path, f"it is not a regular file of this user's (uid {found.st_uid})")
            return None
        text = marker.read(64).decode("ascii", "replace")
    named = Instance.decode(text)
    return named if named is not None and named.alive() else None


def write(path: str, server: Instance) -> None:
    """Name ``server`` in the drain file: written aside under a random name and renamed
    into place, so a reader never sees it half written and no name can be planted."""
    folder = os.path.dirname(path) or "."
    descriptor, partial = tempfile.mkstemp(prefix=".drain-", dir=folder)
    try:
        with os.fdopen(descriptor, "w") as marker:
            marker.write(server.encode())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


def _refuse(path: str, why: str) -> None:
    if (path, why) not in _refused:
        _refused.add((path, why))
        logger.error("drain_file %r is ignored: %s", path, why)
