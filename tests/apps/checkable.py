"""Healths for ``health-middleware check``: passing, warning, failing, and one whose
check hangs far past the test (to stop it with Ctrl-C)."""

from __future__ import annotations

import asyncio
import time

from health_middleware import CheckResult, Health

passing = Health(service_id="checkable", timeout=1)
passing.add_check("sync", lambda: True)


@passing.check("async:responseTime")
async def quick() -> CheckResult:
    await asyncio.sleep(0.01)
    return CheckResult(observed_value=10, observed_unit="ms")


warning = Health(timeout=1)
warning.add_check("fine", lambda: True)
warning.add_check("flaky", lambda: False, critical=False)

failing = Health(timeout=0.5)
failing.add_check("fine", lambda: True)
failing.add_check("refused", lambda: (_ for _ in ()).throw(ConnectionRefusedError()))
failing.add_check("slow", lambda: time.sleep(5), timeout=0.3)  # bounded by its timeout

hanging = Health(timeout=600)
hanging.add_check("hangs", lambda: time.sleep(600))

not_a_health = object()

hostile = Health(timeout=1)


@hostile.check("escape")
def escape() -> CheckResult:
    return CheckResult("fail", output="\x1b[2J\x1b[31mPWNED\x1b]0;title\x07 line\nsecond\rover")


many = Health(timeout=0.5, max_threads=2)
for number in range(120):
    many.add_check(f"slow-{number}", lambda: time.sleep(0.3))  # each passes in 0.3 s

explained = Health(timeout=1)


@explained.check("db")
def refused_by_the_database() -> None:
    raise ConnectionRefusedError("connection to db.internal:5432 refused: is it running?")
