"""Ready-made checks. Each returns a check function to register with
``health.add_check(name, fn)``; the function carries its ``component_type``."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import Any, Protocol

from health_middleware.result import CheckResult


class _Cursor(Protocol):
    def execute(self, query: str) -> Any: ...
    def fetchone(self) -> Any: ...
    def close(self) -> Any: ...


class _Connection(Protocol):
    def cursor(self) -> Any: ...
    def close(self) -> Any: ...


def _typed(fn: Callable[[], CheckResult], component_type: str) -> Callable[[], CheckResult]:
    fn.component_type = component_type  # type: ignore[attr-defined]
    return fn


def _percent(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 100:
        raise ValueError(f"{name} must be a percentage in (0, 100], got {value!r}")
    return float(value)


def disk(
    path: str | os.PathLike[str] = "/", *, warn: float = 90.0, fail: float = 95.0
) -> Callable[[], CheckResult]:
    """Used space of the filesystem holding ``path``, as ``utilization`` in %."""
    warn, fail = _percent("warn", warn), _percent("fail", fail)
    if warn > fail:
        raise ValueError("warn must not be above fail")
    target = os.fspath(path)

    def check() -> CheckResult:
        usage = shutil.disk_usage(target)
        used = round(100.0 * (usage.total - usage.free) / usage.total, 2)
        status = "fail" if used >= fail else "warn" if used >= warn else "pass"
        output = None if status == "pass" else f"{used}% used"
        return CheckResult(status, observed_value=used, observed_unit="percent", output=output)

    return _typed(check, "system")


def dbapi(connect: Callable[[], Any], *, query: str = "SELECT 1") -> Callable[[], CheckResult]:
    """Open a DB-API connection with ``connect()``, run ``query``, close it; report
    the round trip as ``responseTime`` in ms. Give ``connect`` its own timeout."""
    if not callable(connect):
        raise TypeError("connect must be a callable returning a DB-API connection")

    def check() -> CheckResult:
        started = time.perf_counter()
        connection: _Connection = connect()
        try:
            cursor: _Cursor = connection.cursor()
            try:
                cursor.execute(query)
                cursor.fetchone()
            finally:
                cursor.close()
        finally:
            connection.close()
        elapsed = round((time.perf_counter() - started) * 1000.0, 3)
        return CheckResult(observed_value=elapsed, observed_unit="ms")

    return _typed(check, "datastore")
