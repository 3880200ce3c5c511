"""A Health where one check holds the event loop and another holds the GIL, beside
healthy ones (PostgreSQL on 127.0.0.1:5432, a quick sync check): the healthy ones
must pass, the two culprits fail, each named (tests/test_stalls.py)."""

from __future__ import annotations

import time

from health_middleware import Health, HealthMiddleware, checks

HOLD = 1.5  # seconds each culprit holds what it holds; the timeout is 1 s


def _gil_loops() -> int:
    """How many items ``sum(range(n))`` takes to hold the GIL for at least HOLD
    seconds here (one C call: the interpreter never lets another thread run inside
    it), from the fastest of three samples (a busy machine only makes it longer)."""
    fastest = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        sum(range(1_000_000))
        fastest = min(fastest, time.perf_counter() - started)
    return int(1_000_000 * HOLD / max(fastest, 1e-6))


GIL_LOOPS = _gil_loops()

health = Health(service_id="blocking", timeout=1, interval=4)
health.add_check("postgres", checks.postgres("postgresql://postgres@127.0.0.1:5432/test"))
health.add_check("quick", lambda: time.sleep(0.01))


@health.check("loop-hog", critical=False)
async def loop_hog() -> None:
    time.sleep(HOLD)  # the mistake: blocking code in 'async def'


@health.check("gil-hog", critical=False)
def gil_hog() -> None:
    sum(range(GIL_LOOPS))  # a long C call that never releases the GIL


async def plain(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    raise AssertionError("only health paths are requested")


app = HealthMiddleware(plain, health)
