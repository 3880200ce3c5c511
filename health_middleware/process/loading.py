"""Whether a gunicorn worker is still loading its app: a WSGI middleware made in the
worker starts at once, while the app's module, or the factory gunicorn calls, may yet
register checks and endpoints; its set-up is judged once the worker's ``load_wsgi``
has returned (the app it serves is then complete), read from the stack of the thread
that loads it, never by touching the modules themselves."""

from __future__ import annotations

import sys
import time

POLL = 0.05  # seconds between looks


def loading(thread: int) -> bool:
    """Whether ``thread`` is inside a gunicorn worker's ``load_wsgi``."""
    frame = sys._current_frames().get(thread)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "load_wsgi" and "gunicorn" in code.co_filename:
            return True
        frame = frame.f_back
    return False


def wait_while_loading(thread: int, within: float) -> bool:
    """Wait until ``thread`` has loaded its app, ``within`` seconds at most; return
    whether it still loads then."""
    deadline = time.monotonic() + within
    while loading(thread):
        if time.monotonic() > deadline:
            return True
        time.sleep(POLL)
    return False
