"""In-process costs, no network: a request driven straight through the app's
coroutine (ASGI) or call (WSGI), each against its baseline measured the same way."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from benchmarks.apps import bare_asgi, bare_wsgi
from health_middleware import Health, HealthMiddleware, WSGIHealthMiddleware
from health_middleware.formats import NAMED


@dataclass
class Row:
    what: str
    value: float  # ns per request, or as the unit says
    baseline: float | None = None
    target: float | None = None  # the largest acceptable ratio
    unit: str = "ns/request"

    @property
    def ratio(self) -> float | None:
        return None if self.baseline is None else self.value / self.baseline

    @property
    def met(self) -> bool | None:
        ratio = self.ratio
        return None if ratio is None or self.target is None else ratio <= self.target


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def _send(message: Any) -> None:
    return None


def _start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
    return None


def time_asgi(app: Any, path: str, n: int, repeats: int) -> float:
    """Best-of-``repeats`` ns per request, the coroutine run to completion in one step."""
    scope = _scope(path)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for _ in range(n):
            coroutine = app(scope, _receive, _send)
            with contextlib.suppress(StopIteration):
                coroutine.send(None)
        best = min(best, (time.perf_counter_ns() - started) / n)
    return best


def time_wsgi(app: Callable[..., Iterable[bytes]], path: str, n: int, repeats: int) -> float:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": ""}
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for _ in range(n):
            for _chunk in app(environ, _start_response):
                pass
        best = min(best, (time.perf_counter_ns() - started) / n)
    return best


class DoNothing:
    """The floor for any Python ASGI middleware: one extra call frame."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class DoNothingWSGI:
    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


def _prepared_health() -> Health:
    """A Health whose first round is done and published, its refresher then stopped:
    the snapshot stays valid (stale_after is long) and no thread takes the GIL while
    requests are timed."""
    health = Health(interval=1.0, timeout=1.0, stale_after=3600)
    health.add_check("dependency", lambda: time.sleep(0.002))
    for name in NAMED:
        health.endpoint(f"/formats/{name}", format=name)
    health.runtime.start_in_thread()
    deadline = time.monotonic() + 10
    while not health.engine.publisher.first_round_done():
        if time.monotonic() > deadline:
            raise RuntimeError("the first round of checks did not finish")
        time.sleep(0.01)
    health.stop()
    return health


def run(n: int = 200_000, repeats: int = 5) -> list[Row]:
    health = _prepared_health()
    ours_asgi = HealthMiddleware(bare_asgi, health)
    ours_wsgi = WSGIHealthMiddleware(bare_wsgi, health)
    time_asgi(ours_asgi, "/health", n, 1)  # warm-up: caches, the refresher's first rounds
    time_wsgi(ours_wsgi, "/health", n, 1)
    rows = []
    asgi_floor, wsgi_floor = DoNothing(bare_asgi), DoNothingWSGI(bare_wsgi)
    pairs: list[tuple[str, Callable[..., float], Any, Any, str, float]] = [
        (
            "ASGI health request (vs the bare constant app)",
            time_asgi,
            ours_asgi,
            bare_asgi,
            "/health/ready",
            1.5,
        ),
        (
            "WSGI health request (vs the bare constant app)",
            time_wsgi,
            ours_wsgi,
            bare_wsgi,
            "/health/ready",
            1.5,
        ),
        (
            "ASGI non-health request (vs a do-nothing middleware)",
            time_asgi,
            ours_asgi,
            asgi_floor,
            "/api/orders",
            1.15,
        ),
        (
            "WSGI non-health request (vs a do-nothing middleware)",
            time_wsgi,
            ours_wsgi,
            wsgi_floor,
            "/api/orders",
            1.15,
        ),
    ]
    for what, timer, ours, baseline, path, target in pairs:
        # Interleaved, best of each: drift on a shared machine hits both alike.
        base = cost = float("inf")
        for _ in range(repeats):
            base = min(base, timer(baseline, path, n, 1))
            cost = min(cost, timer(ours, path, n, 1))
        rows.append(Row(what, cost, base, target))
    ietf = time_asgi(ours_asgi, "/formats/ietf", n, repeats)
    for name in NAMED:
        cost = time_asgi(ours_asgi, f"/formats/{name}", n, repeats)
        if name == "negotiate":
            # Opted in: the slow path reads the Accept header and the query string
            # (a variant is chosen per request); measured, no target. Every other
            # endpoint keeps the one-lookup fast path (the rows above).
            rows.append(Row("format negotiate, a variant chosen per request (vs ietf)", cost, ietf))
        else:
            rows.append(Row(f"format {name} (vs ietf)", cost, ietf, 1.1))
    rows.append(soak(ours_asgi))
    health.stop()
    return rows


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def soak(app: Any, n: int = 1_000_000) -> Row:
    """Memory growth over a million health requests, after a warm-up."""
    time_asgi(app, "/health", 10_000, 1)
    gc.collect()
    objects, rss = len(gc.get_objects()), _rss()
    time_asgi(app, "/health", n, 1)
    gc.collect()
    grown = (_rss() - rss) / 1048576
    row = Row(
        f"memory growth after {n:,} requests (objects {len(gc.get_objects()) - objects:+d})",
        grown,
        unit="MiB",
    )
    row.target = 1.0
    return row
