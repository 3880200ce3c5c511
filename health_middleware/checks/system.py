"""The process and its host: disk space, resident memory, event loop lag."""

from __future__ import annotations

import asyncio
import os
import resource

from health_middleware.checks._common import Check, graded, ordered, percent, typed
from health_middleware.config.callables import makes_check
from health_middleware.config.validation import positive, seconds
from health_middleware.model.result import CheckResult


@makes_check("checks.disk(path)")
def disk(path: str | os.PathLike[str] = "/", *, warn: float = 90.0, fail: float = 95.0) -> Check:
    """The used space of the filesystem holding ``path``, in percent.

    Computed as ``df`` does: used / (used + available to unprivileged users), so the
    blocks reserved for root count neither way and 100 means a full disk for the app.

    Args:
        path: A path on the filesystem to watch; it must exist when the check is made.
        warn: The percentage from which the check warns.
        fail: The percentage from which the check fails; not below ``warn``.

    Returns:
        A sync check whose observed value is the used space (unit ``percent``).
    """
    warn, fail = percent("warn", warn), percent("fail", fail)
    ordered(("warn", warn), ("fail", fail))
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or an os.PathLike, got {type(path).__name__}")
    target = os.fspath(path)
    try:
        os.statvfs(target)
    except OSError as exc:
        raise ValueError(
            f"path {target!r} cannot be measured ({exc.strerror}): give an existing path "
            "on the filesystem to watch, e.g. checks.disk('/var/lib/app')"
        ) from None

    def check() -> CheckResult:
        stats = os.statvfs(target)
        taken = stats.f_blocks - stats.f_bfree
        if taken + stats.f_bavail <= 0:  # /proc, /sys and the like
            return CheckResult("fail", output="the filesystem reports no blocks")
        used = round(100.0 * taken / (taken + stats.f_bavail), 2)
        status = graded(used, warn, fail)
        output = None if status == "pass" else f"{used}% used"
        return CheckResult(status, observed_value=used, observed_unit="percent", output=output)

    return typed(check, "system")


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: the peak is what is known
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@makes_check("checks.memory()")
def memory(*, warn_mib: float | None = None, fail_mib: float | None = None) -> Check:
    """This process's resident memory (RSS), in MiB; measured in every worker.

    Args:
        warn_mib: The MiB from which the check warns; ``None``: never.
        fail_mib: The MiB from which the check fails; ``None``: never. Not below
            ``warn_mib``.

    Returns:
        A sync check (``scope="process"``) whose observed value is the resident
            memory (unit ``MiB``).
    """
    for name, value in (("warn_mib", warn_mib), ("fail_mib", fail_mib)):
        if value is not None:
            positive(name, value, "MiB")
    ordered(("warn_mib", warn_mib), ("fail_mib", fail_mib))

    def check() -> CheckResult:
        used = round(_rss_bytes() / 1048576, 1)
        status = graded(used, warn_mib, fail_mib)
        output = None if status == "pass" else f"{used} MiB resident"
        return CheckResult(status, observed_value=used, observed_unit="MiB", output=output)

    return typed(check, "system", "process")


MAX_LAG = 60.0  # seconds: a threshold above it is a unit mistake (milliseconds)


@makes_check("checks.event_loop_lag()")
def event_loop_lag(*, warn: float = 0.1, fail: float = 0.5, sample: float = 0.01) -> Check:
    """How late the event loop wakes from a short sleep; measured in every worker.

    Under ASGI it runs on the app's event loop, so a wedged or overloaded worker
    shows here: tag it ``live``. The thresholds are in seconds (0.1 is 100 ms); one
    above 60 is refused as a unit mistake.

    Args:
        warn: Seconds late from which the check warns.
        fail: Seconds late from which the check fails; not below ``warn``.
        sample: Seconds of the sleep it measures.

    Returns:
        An async check (``scope="process"``) whose observed value is the lag, in ms.
    """
    warn, fail, sample = seconds("warn", warn), seconds("fail", fail), seconds("sample", sample)
    for name, value in (("warn", warn), ("fail", fail)):
        if value > MAX_LAG:
            raise ValueError(
                f"{name}={value:g} is seconds, not milliseconds: a loop {value:g} s late "
                f"could never be seen within a check's timeout; e.g. {name}={value / 1000:g}"
            )
    ordered(("warn", warn), ("fail", fail))

    async def check() -> CheckResult:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(sample)
        lag = max(0.0, loop.time() - started - sample)
        status = graded(lag, warn, fail)
        output = None if status == "pass" else f"the loop woke {lag * 1000:.0f} ms late"
        return CheckResult(
            status, observed_value=round(lag * 1000, 3), observed_unit="ms", output=output
        )

    return typed(check, "system", "process")
