"""Whether the process is still importing: a WSGI middleware made in a gunicorn worker
starts while the app's module (and those importing it) still run, and may yet
register checks and endpoints; its set-up is checked once they have finished."""

from __future__ import annotations

import sys
import time

POLL = 0.05  # seconds between looks


def importing() -> list[str]:
    """The modules whose import is under way (in any thread): importlib marks a
    module's spec ``_initializing`` while its code runs."""
    return [
        name
        for name, module in list(sys.modules.items())
        if getattr(getattr(module, "__spec__", None), "_initializing", False)
    ]


def wait_for_imports(within: float) -> list[str]:
    """Wait until no module is being imported, ``within`` seconds at most; return the
    modules still importing then (none once they have all finished)."""
    deadline = time.monotonic() + within
    while (left := importing()) and time.monotonic() < deadline:
        time.sleep(POLL)
    return left
