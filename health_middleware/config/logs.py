"""Where logging was never configured, this package's warnings still say who speaks.

Python prints a warning that no handler takes with ``logging.lastResort``: the bare
message, no level, no logger name. Under the servers' default set-ups (uvicorn and
gunicorn configure their own loggers only) that is how every health warning reads,
and a line such as "check 'db' is failing" cannot be told from the app's own. The
handler here takes exactly those records, and only while nothing else would: any
handler configured on the way to the root (``logging.basicConfig``, a dictConfig,
pytest's capture) silences it.
"""

from __future__ import annotations

import logging
import sys

NAME = "health_middleware"


class LastResort(logging.Handler):
    """``logging.lastResort`` with the level and the logger's name."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def handle(self, record: logging.LogRecord) -> bool:
        if _configured(logging.getLogger(record.name)):
            return False
        return super().handle(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def _configured(logger: logging.Logger) -> bool:
    """Whether a handler other than this fallback takes ``logger``'s records."""
    current: logging.Logger | None = logger
    while current is not None:
        if any(not isinstance(handler, LastResort) for handler in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def install() -> None:
    """Add the handler to this package's logger, once."""
    logger = logging.getLogger(NAME)
    if not any(isinstance(handler, LastResort) for handler in logger.handlers):
        logger.addHandler(LastResort())
