"""The callbacks: what the exporters and the app asked to be told (``on_change``,
``on_run``, ``on_publish``), and the one way each is called. A callback that raises
is logged once per kind of failure (a broken exporter: one traceback, not one a run)
and skipped; it never stops the refresher or a publish.

Registration appends to lists read on other threads; a reader iterates a copy taken
by one assignment, so a callback added meanwhile is called from the next event on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from health_middleware.engine.snapshot import Snapshot
from health_middleware.model.check import Check
from health_middleware.model.result import Outcome
from health_middleware.model.status import Status

logger = logging.getLogger("health_middleware")

# on_change callbacks: (check name, or None for the whole; old status or None; new status)
Listener = Callable[[str | None, Status | None, Status], object]
L = TypeVar("L", bound=Listener)
C = TypeVar("C")
# on_run callbacks: every run this process made, as the refresher records it.
RunListener = Callable[[Check, Outcome], object]
# on_publish callbacks: every snapshot this process publishes, as it is swapped in.
PublishListener = Callable[[Snapshot], object]


class Callbacks:
    def __init__(self) -> None:
        self._change: tuple[Listener, ...] = ()
        self._run: tuple[RunListener, ...] = ()
        self._publish: tuple[PublishListener, ...] = ()
        self._failed: set[tuple[int, type[BaseException]]] = set()

    # -- registering -----------------------------------------------------------------

    def on_change(self, callback: L) -> L:
        """Call ``callback(name, old, new)`` on every change of status of a check (its
        name) or of the whole (``None``), on the refresher, in this process."""
        self._change = (*self._change, _callable("on_change", callback))
        return callback

    def on_run(self, callback: RunListener) -> RunListener:
        """Call ``callback(check, outcome)`` for every run this process makes (on the
        refresher, never on a request)."""
        self._run = (*self._run, _callable("on_run", callback))
        return callback

    def on_publish(self, callback: PublishListener) -> PublishListener:
        """Call ``callback(snapshot)`` with every snapshot this process publishes,
        after it is swapped in (on whichever thread published it: the refresher, or a
        registration or drain call). For readers that stream changes (gRPC ``Watch``)
        rather than poll."""
        self._publish = (*self._publish, _callable("on_publish", callback))
        return callback

    # -- telling ---------------------------------------------------------------------

    def changed(self, name: str | None, old: Status | None, new: Status) -> None:
        for listener in self._change:
            self._call("on_change", listener, name, old, new)

    def ran(self, check: Check, outcome: Outcome) -> None:
        for listener in self._run:
            self._call("on_run", listener, check, outcome)

    def published(self, snapshot: Snapshot) -> None:
        for listener in self._publish:
            self._call("on_publish", listener, snapshot)

    def _call(self, kind: str, listener: Callable[..., object], *args: object) -> None:
        try:
            listener(*args)
        except Exception as exc:
            failure = (id(listener), type(exc))
            if failure not in self._failed:
                self._failed.add(failure)
                logger.exception("an %s callback raised; it is skipped (logged once)", kind)


def _callable(kind: str, callback: C) -> C:
    if not callable(callback):
        raise TypeError(f"{kind} needs a callable, got {type(callback).__name__}")
    return callback
