"""The engine of one ``Health``: its registry, callbacks, results, sharing and
publisher, made and put together once. The refresher sees it through ``refresher.Checks``; the faces
read ``publisher.snapshot``; ``Health`` is the public facade over all of it."""

from __future__ import annotations

from collections.abc import Iterator

from health_middleware.engine.callbacks import Callbacks
from health_middleware.engine.drain import Drain
from health_middleware.engine.publisher import Publisher
from health_middleware.engine.registry import Registry
from health_middleware.engine.results import Results
from health_middleware.engine.sharing import Sharing
from health_middleware.engine.snapshot import Snapshot
from health_middleware.model.check import Check, CheckState
from health_middleware.model.report import Service
from health_middleware.model.result import Outcome


class Engine:
    def __init__(
        self,
        *,
        service: Service,
        base_path: str,
        stale_after: float,
        details_token: str | None,
        drain_file: str | None,
    ) -> None:
        self.drain = Drain()
        self.registry = Registry(service=service, base_path=base_path, details_token=details_token)
        self.callbacks = Callbacks()
        self.results = Results(self.registry, self.drain, self.callbacks)
        self.publisher = Publisher(
            self.registry, self.results, self.drain, self.callbacks, stale_after=stale_after
        )
        self.sharing = Sharing(
            self.results, self.drain, self.publisher.publish, drain_file=drain_file
        )

    @property
    def snapshot(self) -> Snapshot:
        return self.publisher.snapshot

    def add_check(self, check: Check) -> None:
        """Register ``check`` (refused if its name is taken), keep its state, publish."""
        self.registry.add_check(check)
        self.results.track(check)
        self.publisher.publish()

    # -- refresher.Checks -------------------------------------------------------------

    def states(self) -> Iterator[CheckState]:
        return self.results.states()

    def record(self, state: CheckState, outcome: Outcome) -> None:
        self.results.record(state, outcome)

    def follow(self) -> bool:
        return self.sharing.follow()

    def refresh(self) -> None:
        self.sharing.follow_drain_file()
        self.publisher.publish()

    def leave_instance(self, error: Exception) -> None:
        self.sharing.leave(error)

    # -- a forked child ---------------------------------------------------------------

    def after_fork(self) -> None:
        """In a forked child: nothing of the parent's knowledge, its locks or its
        database connection."""
        self.drain.reset()
        self.registry.after_fork()
        self.results.reset()
        self.sharing.reset()
        self.publisher.after_fork()
