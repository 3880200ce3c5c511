"""The watch of the main port (``Health.listen(watch=...)``): from the probe port's
thread, a request through the main port every interval; each answer beats the
``main-port`` heartbeat, so a main listener that no longer accepts or answers fails
liveness on the probe port too (a separate port would otherwise hide it)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from health_middleware.config.validation import address, count, period
from health_middleware.engine.heartbeat import heartbeat_check
from health_middleware.model.check import Check

logger = logging.getLogger("health_middleware")

FIRST_RETRY = 0.25  # seconds between the watch's requests until the main port first answers


@dataclass(frozen=True, slots=True)
class Watch:
    """The main port, requested from the probe port's thread."""

    host: str
    port: int
    path: str  # requested through the main port: the app's liveness path
    interval: float  # seconds between two requests, and the most one may take
    beat: Callable[[], None]  # called on every answer

    def request(self) -> bytes:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (
            f"GET {self.path} HTTP/1.1\r\nHost: {host}:{self.port}\r\n"
            "User-Agent: health_middleware-watch\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")

    async def answered(self) -> bool:
        """Whether the main port answers one request with a status line in time."""
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.interval):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                writer.write(self.request())
                line = await reader.readline()
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
            return False  # refused, reset, too slow, or a line past the stream's limit
        finally:
            if writer is not None:
                writer.close()
        return line.startswith(b"HTTP/")

    async def run(self) -> None:
        """Request the main port every ``interval`` seconds, beating on each answer
        (a failure of the watch itself is logged: its heartbeat then fails liveness)."""
        first = True
        try:
            while True:
                started = time.monotonic()
                if await self.answered():
                    first = False
                    self.beat()
                wait = min(self.interval, FIRST_RETRY) if first else self.interval
                await asyncio.sleep(max(0.0, started + wait - time.monotonic()))
        except Exception:
            logger.exception("the watch of the main port %s:%s stopped", self.host, self.port)


WATCH_CHECK = "main-port"  # the heartbeat of listen(watch=...)


def watch_check(
    watch: object,
    interval: object,
    misses: object,
    *,
    probe_port: int | None,
    live_path: str,
    registered: Iterable[str],
    defaults: tuple[float, float],
) -> tuple[Watch, Check]:
    """The watch of the main port ``watch`` (a port on 127.0.0.1, or "host:port") and
    its heartbeat check, ``main-port`` (not yet registered), failing after ``misses``
    unanswered requests ``interval`` seconds apart. ``defaults``: the Health's
    interval and timeout."""
    if isinstance(watch, bool) or not isinstance(watch, int | str):
        raise TypeError("watch must be the main port: a port number or 'host:port'")
    main = address("watch", str(watch), "127.0.0.1")
    if main[1] == probe_port:
        raise ValueError(f"watch={watch!r} is the probe port itself: watch the app's main port")
    if WATCH_CHECK in registered:
        raise ValueError(f"a check named {WATCH_CHECK!r} is already registered")
    every, times = period("watch_interval", interval), count("watch_misses", misses)
    beat, check = heartbeat_check(
        WATCH_CHECK, every * times, {}, interval=defaults[0], timeout=defaults[1]
    )
    return Watch(*main, path=live_path, interval=every, beat=beat), check
