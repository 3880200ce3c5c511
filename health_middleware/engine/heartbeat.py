"""A heartbeat: progress, not just presence. A work loop calls the ``Heartbeat``
object (``beat()``) each time round; its check fails once the last beat is older than
``max_age`` seconds (``Health.heartbeat`` registers it).

A beat is one clock read and one attribute store: no lock (a store is atomic under
the GIL), callable from any thread, costing nanoseconds. A heartbeat belongs to the
process that beats it: a forked child starts with no beat, and before its first beat
the check has no result (the process is "starting", as before any check's first run).
"""

from __future__ import annotations

import os
import time
import weakref

from health_middleware.config.validation import seconds
from health_middleware.model.check import PROCESS, Check, CheckOptions
from health_middleware.model.endpoint import LIVE
from health_middleware.model.result import CheckResult, NoResult

# The check's output in a process that has not beaten (a one-shot ``check`` command
# runs in a fresh process, where no loop beats): not a failure, nothing measured.
NOT_BEATEN = "no beat yet in this process (a heartbeat measures the process that beats it)"


class Heartbeat:
    """Call it from a work loop to say it made progress; ``pause()`` when the loop
    waits on purpose (see ``Health.heartbeat``)."""

    __slots__ = ("__weakref__", "_began", "_last", "_paused", "max_age", "name")

    def __init__(self, name: str, max_age: float) -> None:
        self.name = name
        self.max_age = max_age
        self._last: float | None = None  # time.monotonic() of the last beat
        self._began: float | None = None  # begin(): when the beats were due to start
        self._paused = False
        ref = weakref.ref(self)

        def forget() -> None:  # in a forked child: the parent's beats are not its own
            heartbeat = ref()
            if heartbeat is not None:
                heartbeat._last, heartbeat._began, heartbeat._paused = None, None, False

        os.register_at_fork(after_in_child=forget)

    def __call__(self) -> None:
        """Beat: the loop made progress now (and is no longer paused)."""
        self._last = time.monotonic()
        self._paused = False

    def begin(self) -> None:
        """Beats are due from now: with none within ``max_age`` the check fails
        (otherwise a loop that never beats leaves the process "starting" for ever;
        the main-port watch begins as it starts)."""
        self._began = time.monotonic()

    def pause(self) -> None:
        """The loop waits on purpose (reconnecting to its broker, shutting down): the
        check passes until the next beat, which resumes it. Before the first beat
        the check still has no result."""
        self._paused = True

    @property
    def age(self) -> float | None:
        """Seconds since the last beat, or None before the first."""
        last = self._last
        return None if last is None else time.monotonic() - last

    async def check(self) -> CheckResult | NoResult:
        """The check (async: it runs on the refresher's loop, never waiting for a
        thread of the check pool that slow checks may hold)."""
        age, began = self.age, self._began
        if age is None and began is not None and time.monotonic() - began > self.max_age:
            return CheckResult("fail", output=f"no beat in the {self.max_age:g} s since it began")
        if age is None:
            return NoResult(NOT_BEATEN)
        observed = round(age, 3)
        if self._paused:
            return CheckResult("pass", observed_value=observed, observed_unit="s")
        if age > self.max_age:
            return CheckResult(
                "fail",
                observed_value=observed,
                observed_unit="s",
                output=f"no beat for {age:.1f} s (max_age {self.max_age:g} s)",
            )
        return CheckResult("pass", observed_value=observed, observed_unit="s")

    def __repr__(self) -> str:
        return f"<Heartbeat {self.name!r} max_age={self.max_age:g}>"


def heartbeat_check(
    name: str, max_age: object, options: CheckOptions, *, interval: float, timeout: float
) -> tuple[Heartbeat, Check]:
    """A heartbeat and its check (not yet registered): scope "process", tagged
    ``live`` unless ``options`` says otherwise, checked every second (at most
    ``max_age``); ``interval`` and ``timeout`` are the Health's defaults."""
    beat = Heartbeat(name, seconds("max_age", max_age, minimum=0.01))
    if options.get("scope", PROCESS) != PROCESS:
        raise ValueError(
            f"heartbeat {name!r}: a heartbeat measures the process that beats it; "
            "leave scope out (it is 'process')"
        )
    chosen: CheckOptions = {"tags": (LIVE,), "interval": min(1.0, beat.max_age), **options}
    chosen["scope"] = PROCESS
    return beat, Check.build(name, beat.check, chosen, interval=interval, timeout=timeout)
