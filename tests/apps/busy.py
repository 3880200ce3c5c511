"""A service whose own requests keep its server busy, for the probe port's tests
(a variant of ``flagged``).

The app's routes: ``/sleep/<s>`` waits ``s`` seconds (WSGI: ``time.sleep``, a worker
held; ASGI: ``asyncio.sleep``), ``/cpu/<s>`` burns ``s`` seconds of CPU (ASGI: on the
loop, which stays busy but progresses between requests), ``/block/<s>`` calls
``time.sleep(s)`` inside ``async def`` (the loop blocked); then each answers as
``flagged``'s app does (``app:<pid>``).

Environment: HM_STALE_AFTER (seconds, default 10), HM_NEGOTIATE (adds the negotiated
endpoint ``/health/any``), HM_LISTEN (``host:port``: the
probe port, by ``health.listen``; the one-liners read ``HEALTH_MIDDLEWARE_LISTEN``),
HM_WATCH and HM_WATCH_INTERVAL (the main port that probe port watches, and how often).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from typing import Any

from health_middleware import Health, HealthMiddleware, WSGIHealthMiddleware
from health_middleware.config.environment import listen_address
from tests.apps import flagged

health = Health(
    service_id="busy",
    interval=0.5,
    timeout=0.5,
    stale_after=float(os.environ.get("HM_STALE_AFTER", "10")),
)
if os.environ.get("HM_NEGOTIATE"):
    health.endpoint("/health/any", format="negotiate")
if os.environ.get("HM_LISTEN"):
    host, port = listen_address(os.environ["HM_LISTEN"])
    watch_interval = float(os.environ.get("HM_WATCH_INTERVAL", "5"))
    health.listen(port, host, watch=os.environ.get("HM_WATCH"), watch_interval=watch_interval)


@health.check("process:pid", component_type="system", scope="process")
async def alive() -> bool:
    return True


def _route(path: str) -> tuple[str, float]:
    """``/cpu/0.2`` -> ("cpu", 0.2); any other path -> ("", 0)."""
    parts = path.strip("/").split("/")
    if len(parts) == 2:
        try:
            return parts[0], float(parts[1])
        except ValueError:
            pass
    return "", 0.0


def burn(seconds: float) -> None:
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        pass


def inner_wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    kind, amount = _route(environ.get("PATH_INFO", ""))
    if kind in ("sleep", "block"):
        time.sleep(amount)
    elif kind == "cpu":
        burn(amount)
    return flagged.inner_wsgi(environ, start_response)


async def inner_asgi(scope: Any, receive: Any, send: Any) -> None:
    kind, amount = _route(scope["path"]) if scope["type"] == "http" else ("", 0.0)
    if kind == "sleep":
        await asyncio.sleep(amount)
    elif kind == "block":
        time.sleep(amount)  # the point: the loop is blocked
    elif kind == "cpu":
        burn(amount)
    await flagged.inner_asgi(scope, receive, send)  # the answer (and lifespan) as flagged's


asgi_app = HealthMiddleware(inner_asgi, health)
wsgi_app = WSGIHealthMiddleware(inner_wsgi, health)
