"""gRPC's health service (``grpc.health.v1.Health``) for grpcio servers, answered
from the same snapshot as the health endpoints (extra ``grpc``):

```python
from grpc_health.v1 import health_pb2_grpc
from health_middleware.grpc import HealthServicer  # AsyncHealthServicer: grpc.aio

health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(health), server)
```

``Check``, ``Watch`` and ``List`` read the published snapshot: a call never runs a
check. A service's status is its endpoint's report status: pass or warn is
``SERVING``, fail is ``NOT_SERVING``, and so is every service once the snapshot has
expired (its refresher did not publish in time), as the HTTP answers are.

The services (``List`` names them):

- ``""``: the server's overall readiness, ``<base_path>/ready`` (what Kubernetes'
  ``grpc:`` probe asks for by default);
- ``liveness``, ``readiness``, ``startup``: ``<base_path>/live``, ``/ready`` and
  ``/started``;
- every other endpoint by its path: the full report ``<base_path>`` (``/health``), the
  info endpoint, and each ``health.endpoint(path)``.

An unknown service: ``Check`` ends with ``NOT_FOUND``; ``Watch`` sends
``SERVICE_UNKNOWN`` and stays open (the protocol's rule), sending the real status if an
endpoint of that name appears.

``Watch`` sends the current status at once, then each change in order: every snapshot
published reaches each servicer, and each open ``Watch`` also wakes when the snapshot
would expire, so an expiry is sent without a publish. It ends when the client cancels
or the server stops. On a synchronous ``grpc.server`` each open ``Watch`` holds one of
the server's threads for as long as it is open (grpcio's sync API streams from a
blocking iterator), so ``HealthServicer`` accepts at most ``max_watches`` at once and
answers another ``UNIMPLEMENTED``: the health-checking protocol tells a client to treat
the server as healthy then and stop watching (client-side health checking fails open),
where another code would mark a healthy server down; and ``Check``, the kubelet's
probe, always finds a thread. On ``grpc.aio`` a ``Watch`` is a coroutine.

The refresher: a gRPC server has no HTTP face to start it, so the first call to a
servicer in a process starts that process's refresher if nothing else has (as the
first request through the middleware does), on a thread of its own
(``HealthServicer``) or on the server's event loop (``AsyncHealthServicer``), and
revives one that died. The constructor starts nothing (it may run before a fork).
Starting earlier (so that the first probe finds the first round done) and stopping are
the process's: ``health.stop()`` (or ``await health.stop_async()``) after the server stops.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from health_middleware.config.validation import count
from health_middleware.engine.snapshot import Snapshot
from health_middleware.health import Health

try:
    import grpc
    from grpc_health.v1 import health_pb2
except ImportError as exc:  # the extra is missing
    raise ImportError(
        "health_middleware.grpc needs grpcio and grpcio-health-checking: "
        "pip install 'health_middleware[grpc]'"
    ) from exc

__all__ = ["AsyncHealthServicer", "HealthServicer", "service_names"]

_monotonic = time.monotonic

SERVING: int = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: int = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN: int = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
# Made once: grpcio only serialises a response, so one object serves every call.
_RESPONSES: dict[int, Any] = {
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


class _Feed:
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


class _Servicer:
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
        self._feeds: tuple[_Feed, ...] = ()  # replaced whole: read without the lock
        health.registry.on_publish(self._published)

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
        now = _monotonic()
        return health_pb2.HealthListResponse(
            statuses={
                name: _RESPONSES[_serving(snapshot, path, now)]
                for name, path in self.names(snapshot).items()
            }
        )

    def _watched(self, service: str) -> int:
        """What a Watch of ``service`` says now, from the current snapshot."""
        status = self.status(service, self._publisher.snapshot, _monotonic())
        return SERVICE_UNKNOWN if status is None else status

    def _published(self, _snapshot: Snapshot) -> None:
        """A snapshot was published: offer each open Watch its service's status. Read
        from the current snapshot (a publish on another thread may already
        have replaced the one passed), so the newest status is always the last queued."""
        for feed in self._feeds:
            feed.offer(self._watched(feed.service))

    def _open(self, feed: _Feed) -> bool:
        with self._lock:
            if len(self._feeds) >= self.max_watches:
                return False
            self._feeds = (*self._feeds, feed)
            return True

    def _close(self, feed: _Feed) -> None:
        with self._lock:
            self._feeds = tuple(f for f in self._feeds if f is not feed)

    def _sleep(self) -> float:
        """Seconds an open Watch may sleep: until the current snapshot expires (and a
        moment past, to find it expired), else until a publish, at most ``MAX_WAIT``."""
        left = self._publisher.snapshot.valid_until - _monotonic()
        return min(left + 0.001, MAX_WAIT) if left > 0 else MAX_WAIT

    def _too_many(self, context: Any, fix: str) -> None:
        details = f"too many open Watch streams (max_watches={self.max_watches}){fix}"
        _refuse(context, grpc.StatusCode.UNIMPLEMENTED, details)

    def _answer(self, service: str, snapshot: Snapshot, context: Any) -> Any:
        """Check's answer: ``service``'s status now, or NOT_FOUND for an unknown one."""
        status = self.status(service, snapshot, _monotonic())
        if status is None:
            details = f"unknown service {service[:100]!a}: List names every service"
            _refuse(context, grpc.StatusCode.NOT_FOUND, details)
            return _EMPTY
        return _RESPONSES[status]


class HealthServicer(_Servicer):
    """``grpc.health.v1.Health`` for a synchronous ``grpc.server``, from ``health``'s
    snapshot. Register it with ``health_pb2_grpc.add_HealthServicer_to_server``.

    Args:
        health: The ``Health`` whose endpoints the services answer for.
        max_watches: How many ``Watch`` streams may be open at once. Each holds one
            of the server's threads until the client cancels or the server stops;
            another is answered ``UNIMPLEMENTED``, which tells a client to treat the
            server as healthy. Keep it below the server's ``max_workers`` by the
            threads your own calls and ``Check`` need, or serve with ``grpc.aio``
            (``AsyncHealthServicer``).

    Raises:
        TypeError: ``health`` is not a ``Health``, or ``max_watches`` not a whole
            number.
        ValueError: ``max_watches`` is below 1.
    """

    def __init__(self, health: Health, *, max_watches: int = 2) -> None:
        super().__init__(health, max_watches)

    def _fresh(self) -> Snapshot:
        """The snapshot to answer from, this process's refresher started first if no
        start was asked for yet (on a thread of its own), or revived where it died."""
        publisher = self._publisher
        snapshot = publisher.snapshot
        if not snapshot.started:
            self._runtime.start_in_thread()
            if self.health.wait_first_round:
                publisher.wait_first_round_sync()
            return publisher.snapshot
        if _monotonic() > snapshot.valid_until:
            self._runtime.revive()
        return snapshot

    def Check(self, request: Any, context: Any) -> Any:
        """The ``Check`` RPC: a service's status now (the kubelet's ``grpc`` probe).

        Args:
            request: The ``HealthCheckRequest``; its ``service`` names the service.
            context: The call's ``grpc.ServicerContext``.

        Returns:
            A ``HealthCheckResponse``; an unknown service ends the call with
                ``NOT_FOUND``.
        """
        return self._answer(request.service, self._fresh(), context)

    def List(self, request: Any, context: Any) -> Any:
        """The ``List`` RPC: every service with its status now.

        Args:
            request: The ``HealthListRequest``.
            context: The call's ``grpc.ServicerContext``.

        Returns:
            A ``HealthListResponse``.
        """
        return self.listing(self._fresh())

    def Watch(self, request: Any, context: Any) -> Iterator[Any]:
        """The ``Watch`` RPC: a service's status now, then each change, until the
        client cancels or the server stops. An unknown service is sent
        ``SERVICE_UNKNOWN`` (and its status if an endpoint of that name appears).

        Args:
            request: The ``HealthCheckRequest``; its ``service`` names the service.
            context: The call's ``grpc.ServicerContext``.

        Yields:
            A ``HealthCheckResponse`` for each change. Past ``max_watches`` open
                streams the call ends at once with ``UNIMPLEMENTED``.
        """
        service: str = request.service
        woken = threading.Event()
        feed = _Feed(service, woken.set)
        if not self._open(feed):
            self._too_many(
                context,
                ": each holds one of the server's threads; raise max_watches and the "
                "server's max_workers, or serve with grpc.aio",
            )
            return
        try:
            # Called as the call ends: the client cancelled, or the server stopped.
            if not context.add_callback(feed.close):
                return
            self._fresh()
            while True:
                feed.offer(self._watched(service))
                for status in feed.take():
                    yield _RESPONSES[status]
                woken.wait(self._sleep())
                woken.clear()
                if feed.closed or not context.is_active():
                    return
        finally:
            self._close(feed)


class AsyncHealthServicer(_Servicer):
    """``grpc.health.v1.Health`` for a ``grpc.aio`` server, from ``health``'s
    snapshot. Register it with ``health_pb2_grpc.add_HealthServicer_to_server``.

    Args:
        health: The ``Health`` whose endpoints the services answer for.
        max_watches: How many ``Watch`` streams may be open at once (each is a
            coroutine); another is answered ``UNIMPLEMENTED``.

    Raises:
        TypeError: ``health`` is not a ``Health``, or ``max_watches`` not a whole
            number.
        ValueError: ``max_watches`` is below 1.
    """

    def __init__(self, health: Health, *, max_watches: int = 1000) -> None:
        super().__init__(health, max_watches)

    async def _fresh(self) -> Snapshot:
        """The snapshot to answer from, this process's refresher started first if no
        start was asked for yet (a task on this loop, as under ASGI), or revived."""
        publisher = self._publisher
        snapshot = publisher.snapshot
        if not snapshot.started:
            self._runtime.start_on_loop()
            if self.health.wait_first_round:
                await publisher.wait_first_round_async()
            return publisher.snapshot
        if _monotonic() > snapshot.valid_until:
            self._runtime.revive()
        return snapshot

    async def Check(self, request: Any, context: Any) -> Any:
        """The ``Check`` RPC: a service's status now (the kubelet's ``grpc`` probe).

        Args:
            request: The ``HealthCheckRequest``; its ``service`` names the service.
            context: The call's ``grpc.aio.ServicerContext``.

        Returns:
            A ``HealthCheckResponse``; an unknown service ends the call with
                ``NOT_FOUND``.
        """
        return self._answer(request.service, await self._fresh(), context)

    async def List(self, request: Any, context: Any) -> Any:
        """The ``List`` RPC: every service with its status now.

        Args:
            request: The ``HealthListRequest``.
            context: The call's ``grpc.aio.ServicerContext``.

        Returns:
            A ``HealthListResponse``.
        """
        return self.listing(await self._fresh())

    async def Watch(self, request: Any, context: Any) -> None:
        """The ``Watch`` RPC: a service's status now, then each change, written to
        the stream until the client cancels or the server stops. An unknown service
        is sent ``SERVICE_UNKNOWN`` (and its status if an endpoint of that name
        appears). Past ``max_watches`` open streams the call ends at once with
        ``UNIMPLEMENTED``.

        Args:
            request: The ``HealthCheckRequest``; its ``service`` names the service.
            context: The call's ``grpc.aio.ServicerContext``, written to.
        """
        service: str = request.service
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def wake() -> None:  # on whichever thread publishes
            # A loop that has closed raises: this Watch has ended with it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(woken.set)

        feed = _Feed(service, wake)
        if not self._open(feed):
            self._too_many(context, "; raise max_watches")
            return
        try:
            await self._fresh()
            while True:  # ends by cancellation: the client cancelled, the server stopped
                feed.offer(self._watched(service))
                for status in feed.take():
                    await context.write(_RESPONSES[status])
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._sleep()):
                        await woken.wait()
                woken.clear()
        finally:
            self._close(feed)
