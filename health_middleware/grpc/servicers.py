"""The two servicers of ``grpc.health.v1.Health``: ``HealthServicer`` for a
synchronous ``grpc.server`` (each open ``Watch`` holds a thread), and
``AsyncHealthServicer`` for ``grpc.aio`` (each a coroutine)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from health_middleware.engine.snapshot import Snapshot
from health_middleware.grpc.services import RESPONSES, Feed, Servicer, monotonic
from health_middleware.health import Health


class HealthServicer(Servicer):
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
        if monotonic() > snapshot.valid_until:
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
        feed = Feed(service, woken.set)
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
                    yield RESPONSES[status]
                woken.wait(self._sleep())
                woken.clear()
                if feed.closed or not context.is_active():
                    return
        finally:
            self._close(feed)


class AsyncHealthServicer(Servicer):
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
        if monotonic() > snapshot.valid_until:
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

        feed = Feed(service, wake)
        if not self._open(feed):
            self._too_many(context, "; raise max_watches")
            return
        try:
            await self._fresh()
            while True:  # ends by cancellation: the client cancelled, the server stopped
                feed.offer(self._watched(service))
                for status in feed.take():
                    await context.write(RESPONSES[status])
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._sleep()):
                        await woken.wait()
                woken.clear()
        finally:
            self._close(feed)
