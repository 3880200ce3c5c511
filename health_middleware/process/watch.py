"""The watch of the main port (``Health.listen(watch=...)``): from the probe port's
thread, a request through the main port every interval; each answer beats the
``main-port`` heartbeat, so a main listener that no longer accepts or answers fails
liveness on the probe port too (a separate port would otherwise hide it)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from health_middleware.config.validation import address, count, period
from health_middleware.engine.heartbeat import Heartbeat, heartbeat_check
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
    beat: Heartbeat  # beaten on every answer

    def request(self) -> bytes:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (
            f"GET {self.path} HTTP/1.1\r\nHost: {host}:{self.port}\r\n"
            "User-Agent: health_middleware-watch\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")

    async def answered(self) -> str | None:
        """None where the main port answers one request with a status line in time,
        else why not."""
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.interval):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                writer.write(self.request())
                line = await reader.readline()
        except TimeoutError:
            return f"no answer within {self.interval:g} s"
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            return type(exc).__name__  # refused, reset, or a line past the stream's limit
        finally:
            if writer is not None:
                writer.close()
        return None if line.startswith(b"HTTP/") else "an answer that is not HTTP"

    async def run(self) -> None:
        """Request the main port every ``interval`` seconds, beating on each answer
        (a failure of the watch itself is logged: its heartbeat then fails liveness)."""
        first = True
        silent_since: float | None = time.monotonic()  # None: its silence was logged
        self.beat.begin()  # never answering from the start fails too, after max_age
        try:
            while True:
                started = time.monotonic()
                why = await self.answered()
                if why is None:
                    if silent_since is None:
                        logger.warning("the main port %s:%s answers again", self.host, self.port)
                    first, silent_since = False, started
                    self.beat()
                elif silent_since is not None and started - silent_since >= self.beat.max_age:
                    logger.warning(
                        "the main port %s:%s has not answered for %.0f s (%s): liveness fails",
                        self.host,
                        self.port,
                        started - silent_since,
                        why,
                    )
                    silent_since = None  # logged: once until it answers again
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
    what: str = "watch",
) -> tuple[Watch, Check]:
    """The watch of the main port ``watch`` (a port on 127.0.0.1, or "host:port") and
    its heartbeat check, ``main-port`` (not yet registered), failing after ``misses``
    unanswered requests ``interval`` seconds apart. ``defaults``: the Health's
    interval and timeout; ``what``: how the user named the watch, for the errors."""
    if isinstance(watch, bool) or not isinstance(watch, int | str):
        raise TypeError(f"{what} must be the main port: a port number or 'host:port'")
    main = address(what, str(watch), "127.0.0.1")
    if main[1] == probe_port:
        raise ValueError(f"{what}={watch!r} is the probe port itself: watch the app's main port")
    if WATCH_CHECK in registered:
        raise ValueError(f"a check named {WATCH_CHECK!r} is already registered")
    every, times = period("watch_interval", interval), count("watch_misses", misses)
    beat, check = heartbeat_check(
        WATCH_CHECK, every * times, {}, interval=defaults[0], timeout=defaults[1]
    )
    return Watch(*main, path=live_path, interval=every, beat=beat), check
