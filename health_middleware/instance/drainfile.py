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
    that names nothing alive, or one that is not this user's own regular file: logged
    once). Never blocks: a FIFO planted at the path is refused, not opened for good."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return None
    if not _own_regular_file(found):
        _refuse(path, f"it is not a regular file of this user's (uid {found.st_uid})")
        return None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: replaced by a link since
        _refuse(path, f"it cannot be opened without following a link ({exc.strerror})")
        return None
    with os.fdopen(descriptor, "rb") as marker:
        if not _own_regular_file(os.fstat(marker.fileno())):  # replaced since the lstat
            _refuse(path, "it is not a regular file of this user's")
            return None
        text = marker.read(64).decode("ascii", "replace")
    named = Instance.decode(text)
    return named if named is not None and named.alive() else None


def _own_regular_file(found: os.stat_result) -> bool:
    uid = os.geteuid() if hasattr(os, "geteuid") else found.st_uid
    return stat.S_ISREG(found.st_mode) and found.st_uid in (uid, 0)


def warn_if_shared(path: str) -> None:
    """Warn where ``path``'s folder lets other users write: they could plant a drain
    file there, or a file in the way of this server's own (``/tmp``)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(folder).st_mode
    except OSError:
        return
    if mode & stat.S_IWOTH:
        logger.warning(
            "drain_file %r is in a folder other users can write (%s): a file they put "
            "there is ignored, but can keep this server's drain from being written; "
            "use a folder of this user's own",
            path,
            folder,
        )


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
