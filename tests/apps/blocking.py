"""A Health where one check holds the event loop and another holds the GIL, beside
healthy ones (PostgreSQL on 127.0.0.1:5432, a quick sync check): the healthy ones
must pass, the two culprits fail, each named (tests/test_stalls.py)."""

from __future__ import annotations

import ctypes
import time

from health_middleware import Health, HealthMiddleware, checks

HOLD = 1.5  # seconds each culprit holds what it holds; the timeout is 1 s


# A C function called with the GIL held (ctypes.PyDLL never releases it): a hold of a
# known length, whatever the machine's speed, as a long C extension call would make.
_HOLDING_THE_GIL = ctypes.PyDLL(None)


health = Health(service_id="blocking", timeout=1, interval=4)
health.add_check("postgres", checks.postgres("postgresql://postgres@127.0.0.1:5432/test"))
health.add_check("quick", lambda: time.sleep(0.01))


@health.check("loop-hog", critical=False)
async def loop_hog() -> None:
    time.sleep(HOLD)  # the mistake: blocking code in 'async def'


@health.check("gil-hog", critical=False)
def gil_hog() -> None:
    _HOLDING_THE_GIL.usleep(int(HOLD * 1_000_000))  # a long C call that keeps the GIL


async def plain(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    raise AssertionError("only health paths are requested")


app = HealthMiddleware(plain, health)
