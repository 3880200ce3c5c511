"""Keep probe requests out of the servers' access logs (opt-in)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

# uvicorn, gunicorn and hypercorn log each request on these loggers.
ACCESS_LOGGERS = ("uvicorn.access", "gunicorn.access", "hypercorn.access")


class ProbeFilter(logging.Filter):
    """Drops access-log records of requests to the given paths (any mount prefix)."""

    def __init__(self, paths: Iterable[str]) -> None:
        super().__init__()
        self.paths = tuple(p for path in paths for p in (path, path + "/"))

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        path: object = None
        if isinstance(args, Mapping):  # gunicorn and hypercorn: the atoms, "U" the path
            path = args.get("U")
        elif isinstance(args, tuple) and len(args) >= 3:  # uvicorn: (client, method, path, ...)
            path = args[2]
        if not isinstance(path, str):
            return True
        return not path.partition("?")[0].endswith(self.paths)


def quiet_probes(paths: Iterable[str]) -> ProbeFilter:
    """Add a :class:`ProbeFilter` for ``paths`` to every known access logger."""
    probe_filter = ProbeFilter(paths)
    for name in ACCESS_LOGGERS:
        logging.getLogger(name).addFilter(probe_filter)
    return probe_filter
