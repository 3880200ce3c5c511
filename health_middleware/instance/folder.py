"""The private state folder: where an instance's database and the probe ports' markers
live, ``<state dir>/health-middleware-<uid>``, ``<state dir>`` being
``HEALTH_MIDDLEWARE_STATE_DIR`` or a memory-backed filesystem (``/dev/shm``).

Only this server's user may write there: the folder is made with mode 0700 and
checked on every open (a real folder, not a link, owned by this user, open to nobody
else). Anything else raises ``Untrusted`` naming what was found, and is never read:
another local user could otherwise plant a drain, results or a marker.
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import tempfile

from health_middleware.config.environment import STATE_DIR
from health_middleware.instance.master import Instance

_PREFIX = "health-middleware"


class Untrusted(OSError):
    """The state folder or a file in it could be written by someone other than this
    server's user: it is not used (the message says what was found)."""


def directory() -> str:
    """Where the private state folder is made: ``HEALTH_MIDDLEWARE_STATE_DIR`` if set,
    else memory-backed where possible."""
    chosen = os.environ.get(STATE_DIR)
    if chosen:
        return chosen
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tempfile.gettempdir()


def _uid() -> int:
    return os.geteuid() if hasattr(os, "geteuid") else 0


def state_folder(base: str | None = None) -> str:
    """This user's private state folder in ``base`` (default: ``directory()``), made
    if missing (mode 0700) and checked: it raises ``Untrusted`` for anything another
    user could write (a link, another user's folder, one open to others)."""
    path = os.path.join(base or directory(), f"{_PREFIX}-{_uid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    verify_folder(path)
    return path


def verify_folder(path: str) -> None:
    """Raise ``Untrusted`` unless ``path`` is a folder (not a link to one), owned by
    this user, that nobody else may enter or write."""
    found = os.lstat(path)
    if stat.S_ISLNK(found.st_mode) or not stat.S_ISDIR(found.st_mode):
        raise Untrusted(f"the state folder {path!r} is not a folder (a link, or a file)")
    if found.st_uid != _uid():
        raise Untrusted(
            f"the state folder {path!r} belongs to uid {found.st_uid}, not to this "
            f"server's uid {_uid()}"
        )
    if found.st_mode & 0o077:
        raise Untrusted(
            f"the state folder {path!r} is open to other users (mode "
            f"{stat.S_IMODE(found.st_mode):04o}, not 0700)"
        )


def verify_file(path: str) -> None:
    """Raise ``Untrusted`` if ``path`` exists as anything but this user's own regular
    file (a link could point anywhere)."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(found.st_mode) or found.st_uid != _uid():
        raise Untrusted(f"{path!r} is not this user's own regular file (a link, or another's)")


def pid_namespace() -> str:
    """This process's pid namespace (two containers sharing /dev/shm each have a pid 1)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def database_path(instance: Instance, key: str, folder: str | None = None) -> str:
    """The database of ``instance`` for one ``Health`` (``key`` tells apart two
    ``Health`` objects of one app), in the private state folder."""
    safe_key = "".join(c if c.isalnum() else "-" for c in key)[:40] or "default"
    started = instance.started or "0"
    name = f"ns{pid_namespace()}-{instance.pid}-{started}-{safe_key}.sqlite3"
    return os.path.join(folder or state_folder(), name)


def named_path(scope: str, folder: str | None = None) -> str:
    """The database of a scope the user named: shared by every server that names it."""
    safe = "".join(c if c.isalnum() else "-" for c in scope)[:60]
    return os.path.join(folder or state_folder(), f"scope-{safe}.sqlite3")


def remove_dead(folder: str | None = None) -> int:
    """Delete the databases of instances that are gone (best effort); return how many.
    Only this pid namespace's: another container's pids mean nothing here."""
    folder = folder or state_folder()
    mine = f"ns{pid_namespace()}-"
    removed = 0
    for path in glob.glob(os.path.join(folder, f"{mine}*.sqlite3")):
        parts = os.path.basename(path)[len(mine) :].split("-")
        # <pid>-<started>-<key...>.sqlite3
        if len(parts) < 3 or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        owner = Instance(int(parts[0]), "" if parts[1] == "0" else parts[1])
        if owner.alive():
            continue
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                os.unlink(path + suffix)
        removed += 1
    for path in glob.glob(os.path.join(folder, f"{mine}port-*.owner")):
        with contextlib.suppress(OSError, ValueError):
            with open(path) as marker:
                server = Instance.decode(marker.read(64))
            if server is None or not server.alive():
                os.unlink(path)  # a probe port's marker whose server has gone
    return removed


def claim_port(port: int, owner: Instance, folder: str | None = None) -> Instance | None:
    """Mark ``port`` as ``owner``'s probe port; return the other live instance that
    already serves it, if any. ``SO_REUSEPORT`` lets any process of the same user join
    a port, so the workers of two servers given one probe port would silently split
    its probes: this marker lets the second server refuse instead (best effort: two
    servers starting in the same instant can both pass)."""
    path = os.path.join(folder or state_folder(), f"ns{pid_namespace()}-port-{port}.owner")
    with contextlib.suppress(OSError, ValueError):
        with open(path) as marker:
            other = Instance.decode(marker.read(64))
        if other is not None and other != owner and other.alive():
            return other
    partial = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):
        with open(partial, "w") as marker:
            marker.write(owner.encode())
        os.replace(partial, path)
    return None
