"""What both servicers share: the service names of a snapshot's endpoints, their
serving statuses, and the open ``Watch`` streams (each a ``Feed`` of the changes
still to send)."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from health_middleware.config.validation import count
from health_middleware.engine.snapshot import Snapshot
from health_middleware.health import Health

monotonic = time.monotonic

SERVING: int = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: int = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN: int = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
# Made once: grpcio only serialises a response, so one object serves every call.
RESPONSES: dict[int, Any] = {
    status: health_pb2.HealthCheckResponse(status=status)
    for status in (SERVING, NOT_SERVING, SERVICE_UNKNOWN)
}
_EMPTY = health_pb2.HealthCheckResponse()  # sent with an error status (NOT_FOUND)

OVERALL = ""  # the service name of the server as a whole (gRPC's convention)
_PROBES = {"/live": "liveness", "/ready": "readiness", "/started": "startup"}
MAX_WAIT = 5.0  # the longest an open Watch sleeps before it looks at its call again
PENDING = 64  # changes kept for a Watch whose client reads slowly (the oldest go first)


def _serving(snapshot: Snapshot, path: str, now: float) -> int:
    """Endpoint ``path``'s report at ``now`` as a serving status: pass and warn serve."""
    return NOT_SERVING if snapshot.status(path, now) == "fail" else SERVING


def _refuse(context: Any, code: Any, details: str) -> None:
    """End the call with ``code`` (and ``details``) once the method returns."""
    context.set_code(code)
    context.set_details(details)


def service_names(paths: Iterable[str], base_path: str) -> dict[str, str]:
    """Each gRPC service name and the endpoint path it answers for.

    Args:
        paths: The endpoints' paths.
        base_path: The ``Health``'s ``base_path``, whose probes get the names
            ``liveness``, ``readiness`` and ``startup`` (and readiness also ``""``).

    Returns:
        The path of each service name; a path that is no default probe is its own
            name.
    """
    root = "" if base_path == "/" else base_path
    probes = {root + suffix: name for suffix, name in _PROBES.items()}
    names = {probes.get(path, path): path for path in paths}
    if "readiness" in names:
        names[OVERALL] = names["readiness"]
    return names


class Feed:
    """One open Watch: the statuses still to send, in order. ``offer`` is called on
    whichever thread publishes (and by the Watch itself); ``wake`` rouses the Watch."""

    def __init__(self, service: str, wake: Callable[[], object]) -> None:
        self.service = service
        self._wake = wake
        self._lock = threading.Lock()
        self._pending: collections.deque[int] = collections.deque(maxlen=PENDING)
        self._latest: int | None = None  # the newest status queued
        self._taken: int | None = None  # the newest status taken to be sent
        self.closed = False

    def offer(self, status: int) -> None:
        """Queue ``status`` if it differs from the newest queued, and wake the Watch."""
        with self._lock:
            if status == self._latest:
                return
            self._latest = status
            self._pending.append(status)
        self._wake()

    def take(self) -> list[int]:
        """The changes to send, in order. (Where the oldest were dropped from a full
        queue, one equal to the status last taken is skipped: each message a change.)"""
        with self._lock:
            taken: list[int] = []
            for status in self._pending:
                if status != (taken[-1] if taken else self._taken):
                    taken.append(status)
            self._pending.clear()
            if taken:
                self._taken = taken[-1]
        return taken

    def close(self) -> None:
        self.closed = True
        self._wake()


class Servicer:
    """What both servicers share: the names, the statuses, the open Watches."""

    def __init__(self, health: Health, max_watches: int) -> None:
        if not isinstance(health, Health):
            raise TypeError(f"health must be a Health object, got {type(health).__name__}")
        self.health = health
        self.max_watches = count("max_watches", max_watches)
        self._publisher = health.engine.publisher
        self._runtime = health.runtime
        self._names: tuple[Snapshot | None, Mapping[str, str]] = (None, {})
        self._lock = threading.Lock()
        self._feeds: tuple[Feed, ...] = ()  # replaced whole: read without the lock
        health.engine.callbacks.on_publish(self._published)

    @property
    def watching(self) -> int:
        """How many ``Watch`` streams are open."""
        return len(self._feeds)

    def names(self, snapshot: Snapshot) -> Mapping[str, str]:
        """The service names of a snapshot (worked out once per snapshot).

        Args:
            snapshot: The snapshot whose endpoints to name, ``health.snapshot``.

        Returns:
            The endpoint path of each service name, as ``service_names`` gives it.
        """
        known, names = self._names
        if known is not snapshot:
            names = service_names(snapshot.statuses, self.health.base_path)
            self._names = (snapshot, names)
        return names

    def status(self, service: str, snapshot: Snapshot, now: float) -> int | None:
        """A service's serving status in a snapshot.

        Args:
            service: The service's name, as ``List`` gives it.
            snapshot: The snapshot to read, ``health.snapshot``.
            now: The time to judge expiry by, ``time.monotonic()``.

        Returns:
            ``SERVING`` (1) or ``NOT_SERVING`` (2) from
                ``HealthCheckResponse.ServingStatus``; None for an unknown service.
        """
        path = self.names(snapshot).get(service)
        return None if path is None else _serving(snapshot, path, now)

    def listing(self, snapshot: Snapshot) -> Any:
        """``List``'s answer: every service with its status now.

        Args:
            snapshot: The snapshot to read, ``health.snapshot``.

        Returns:
            A ``HealthListResponse``.
        """
        now = monotonic()
        return health_pb2.HealthListResponse(
            statuses={
                name: RESPONSES[_serving(snapshot, path, now)]
                for name, path in self.names(snapshot).items()
            }
        )

    def _watched(self, service: str) -> int:
        """What a Watch of ``service`` says now, from the current snapshot."""
        status = self.status(service, self._publisher.snapshot, monotonic())
        return SERVICE_UNKNOWN if status is None else status

    def _published(self, _snapshot: Snapshot) -> None:
        """A snapshot was published: offer each open Watch its service's status. Read
        from the current snapshot (a publish on another thread may already
        have replaced the one passed), so the newest status is always the last queued."""
        for feed in self._feeds:
            feed.offer(self._watched(feed.service))

    def _open(self, feed: Feed) -> bool:
        with self._lock:
            if len(self._feeds) >= self.max_watches:
                return False
            self._feeds = (*self._feeds, feed)
            return True

    def _close(self, feed: Feed) -> None:
        with self._lock:
            self._feeds = tuple(f for f in self._feeds if f is not feed)

    def _sleep(self) -> float:
        """Seconds an open Watch may sleep: until the current snapshot expires (and a
        moment past, to find it expired), else until a publish, at most ``MAX_WAIT``."""
        left = self._publisher.snapshot.valid_until - monotonic()
        return min(left + 0.001, MAX_WAIT) if left > 0 else MAX_WAIT

    def _too_many(self, context: Any, fix: str) -> None:
        details = f"too many open Watch streams (max_watches={self.max_watches}){fix}"
        _refuse(context, grpc.StatusCode.UNIMPLEMENTED, details)

    def _answer(self, service: str, snapshot: Snapshot, context: Any) -> Any:
        """Check's answer: ``service``'s status now, or NOT_FOUND for an unknown one."""
        status = self.status(service, snapshot, monotonic())
        if status is None:
            details = f"unknown service {service[:100]!a}: List names every service"
            _refuse(context, grpc.StatusCode.NOT_FOUND, details)
            return _EMPTY
        return RESPONSES[status]
