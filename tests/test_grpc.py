"""The gRPC health service (health_middleware.grpc): real grpcio servers on 127.0.0.1,
a synchronous ``grpc.server`` with ``HealthServicer`` and a ``grpc.aio`` server with
``AsyncHealthServicer``, each asked by real clients of its own kind (sync stubs; aio
stubs on the server's loop). Every scenario runs against both."""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any, Protocol, TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from health_middleware import Health
from health_middleware.grpc import AsyncHealthServicer, HealthServicer, service_names
from tests.support import grpc_check, server

T = TypeVar("T")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
# A serving status, or the name of the code the call ended with ("NOT_FOUND"; "OK":
# a Watch stream that ended without an error).
Answer = int | str


def request(service: str) -> Any:
    return health_pb2.HealthCheckRequest(service=service)


class Stream:
    """One Watch call, read on the client's side into a queue."""

    def __init__(self) -> None:
        self.received: queue.Queue[Answer] = queue.Queue()
        self.cancel: Callable[[], object] = lambda: None

    def next(self, timeout: float = 5.0) -> Answer:
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the Watch sent nothing in {timeout} s") from None

    def quiet(self, seconds: float) -> bool:
        """Whether nothing more arrives (and the stream stays open) for ``seconds``."""
        try:
            self.received.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


class Served(Protocol):
    @property
    def servicer(self) -> HealthServicer | AsyncHealthServicer: ...

    def check(self, service: str) -> Answer: ...
    def listing(self) -> dict[str, int]: ...
    def watch(self, service: str) -> Stream: ...
    def stop_server(self) -> None: ...
    def stop_health(self) -> None: ...
    def leftovers(self) -> list[str]: ...
    def close(self) -> None: ...


class SyncServed:
    """``grpc.server`` with ``HealthServicer``; a synchronous channel."""

    def __init__(self, health: Health, **options: Any) -> None:
        self.health = health
        self.executor = futures.ThreadPoolExecutor(max_workers=8)
        self.server = grpc.server(self.executor)
        # Room for four Watch streams beside the Checks (the default, 2, suits a small pool).
        self.servicer = HealthServicer(health, **{"max_watches": 4, **options})
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = health_pb2_grpc.HealthStub(self.channel)

    def check(self, service: str) -> Answer:
        try:
            return int(self.stub.Check(request(service), timeout=5).status)
        except grpc.RpcError as exc:
            return str(exc.code().name)

    def listing(self) -> dict[str, int]:
        reply = self.stub.List(health_pb2.HealthListRequest(), timeout=5)
        return {name: int(answer.status) for name, answer in reply.statuses.items()}

    def watch(self, service: str) -> Stream:
        stream = Stream()
        call = self.stub.Watch(request(service))
        stream.cancel = call.cancel

        def read() -> None:
            try:
                for reply in call:
                    stream.received.put(int(reply.status))
            except grpc.RpcError as exc:
                stream.received.put(str(exc.code().name))
            else:
                stream.received.put("OK")

        threading.Thread(target=read, name="test-watch-reader", daemon=True).start()
        return stream

    def stop_server(self) -> None:
        self.server.stop(None).wait(5)

    def stop_health(self) -> None:
        self.health.stop()

    def leftovers(self) -> list[str]:
        """The server's threads still busy once it has stopped (a Watch that did not
        end holds one): they must all finish."""
        done = threading.Thread(target=self.executor.shutdown, kwargs={"wait": True})
        done.start()
        done.join(5)
        return ["a server thread still busy"] if done.is_alive() else []

    def close(self) -> None:
        self.server.stop(None).wait(5)
        self.channel.close()
        self.health.stop()
        self.executor.shutdown(wait=False)


class AioServed:
    """``grpc.aio.server`` with ``AsyncHealthServicer``; an aio channel on the same loop,
    which runs on a thread of its own (the test drives it from this thread)."""

    def __init__(self, health: Health, **options: Any) -> None:
        self.health = health
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-aio", daemon=True)
        self.thread.start()
        self.readers: set[asyncio.Task[None]] = set()

        async def start() -> tuple[AsyncHealthServicer, Any, Any]:
            servicer = AsyncHealthServicer(health, **options)
            aio_server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(servicer, aio_server)
            port = aio_server.add_insecure_port("127.0.0.1:0")
            await aio_server.start()
            return servicer, aio_server, grpc.aio.insecure_channel(f"127.0.0.1:{port}")

        self.servicer, self.server, self.channel = self.run(start())
        self.stub = health_pb2_grpc.HealthStub(self.channel)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def check(self, service: str) -> Answer:
        async def ask() -> Answer:
            try:
                return int((await self.stub.Check(request(service), timeout=5)).status)
            except grpc.aio.AioRpcError as exc:
                return str(exc.code().name)

        return self.run(ask())

    def listing(self) -> dict[str, int]:
        async def ask() -> dict[str, int]:
            reply = await self.stub.List(health_pb2.HealthListRequest(), timeout=5)
            return {name: int(answer.status) for name, answer in reply.statuses.items()}

        return self.run(ask())

    def watch(self, service: str) -> Stream:
        stream = Stream()

        async def read(call: Any) -> None:
            try:
                async for reply in call:
                    stream.received.put(int(reply.status))
            except grpc.aio.AioRpcError as exc:
                stream.received.put(str(exc.code().name))
            except asyncio.CancelledError:
                stream.received.put("CANCELLED")
            else:
                stream.received.put("OK")

        async def open_call() -> Any:
            call = self.stub.Watch(request(service))
            task = asyncio.get_running_loop().create_task(read(call))
            self.readers.add(task)
            task.add_done_callback(self.readers.discard)
            return call

        call = self.run(open_call())
        stream.cancel = lambda: self.loop.call_soon_threadsafe(call.cancel)
        return stream

    def stop_server(self) -> None:
        self.run(self.server.stop(None))

    def stop_health(self) -> None:
        self.run(self.health.stop_async())

    def leftovers(self) -> list[str]:
        """The loop's tasks still pending, other than the refresher and the clients'
        readers (a Watch that did not end is one)."""

        async def pending() -> list[str]:
            await asyncio.sleep(0.1)  # let cancelled calls unwind
            ours = {asyncio.current_task(), *self.readers}
            return [
                repr(task)
                for task in asyncio.all_tasks()
                if task not in ours and task.get_name() != "health-refresher"
            ]

        deadline = time.monotonic() + 5
        while (left := self.run(pending())) and time.monotonic() < deadline:
            pass
        return left

    def close(self) -> None:
        async def shutdown() -> None:
            await self.server.stop(None)
            await self.channel.close()
            await self.health.stop_async()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


Serve = Callable[..., Served]


@pytest.fixture(params=["sync", "aio"])
def serve(request: pytest.FixtureRequest) -> Iterator[Serve]:
    """Make a server of the parameter's kind for a ``Health`` (options go to the
    servicer); each is stopped after the test."""
    made: list[Served] = []

    def make(health: Health, **options: Any) -> Served:
        kind = SyncServed if request.param == "sync" else AioServed
        served: Served = kind(health, **options)
        made.append(served)
        return served

    yield make
    for served in made:
        served.close()


class Flag:
    """A check's result the test sets, and how many times the check ran."""

    def __init__(self) -> None:
        self.ok = True
        self.runs = 0

    def __call__(self) -> bool:
        self.runs += 1
        return self.ok


def flagged(**options: Any) -> tuple[Health, Flag]:
    settings: dict[str, Any] = {"interval": 0.1, "timeout": 0.5, "jitter": False, **options}
    health = Health(**settings)
    flag = Flag()
    health.add_check("flag", flag)
    return health, flag


def until(ask: Callable[[], object], wanted: object, bound: float = 5.0) -> None:
    deadline = time.monotonic() + bound
    while (got := ask()) != wanted:
        assert time.monotonic() < deadline, f"still {got!r}, not {wanted!r}, after {bound} s"
        time.sleep(0.02)


def test_check_follows_a_check_that_fails_and_heals(serve: Serve) -> None:
    health, flag = flagged()
    served = serve(health)
    until(lambda: served.check(""), SERVING)
    flag.ok = False
    until(lambda: served.check(""), NOT_SERVING)
    assert served.check("readiness") == NOT_SERVING
    flag.ok = True
    until(lambda: served.check(""), SERVING)
    assert served.check("readiness") == SERVING


def test_watch_sends_the_current_status_then_each_change_in_order(serve: Serve) -> None:
    health, flag = flagged()
    served = serve(health)
    until(lambda: served.check(""), SERVING)
    stream = served.watch("")
    assert stream.next() == SERVING  # at once
    received = []
    for ok in (False, True, False):
        flag.ok = ok
        received.append(stream.next(timeout=2.5))  # sooner than a Watch's longest sleep
    assert received == [NOT_SERVING, SERVING, NOT_SERVING]
    # Publishes without a change (the refresher's every second) send nothing.
    assert stream.quiet(1.5)


def test_unknown_service_not_found_on_check_unknown_on_watch_until_it_appears(
    serve: Serve,
) -> None:
    health, _ = flagged()
    served = serve(health)
    until(lambda: served.check(""), SERVING)
    assert served.check("payments") == "NOT_FOUND"
    assert served.check("x" * 100_000) == "NOT_FOUND"
    assert served.check("/health/live") == "NOT_FOUND"  # its name: liveness
    stream = served.watch("/late")
    assert stream.next() == SERVICE_UNKNOWN
    assert stream.quiet(0.5)  # stays open, as the protocol says
    health.endpoint("/late")
    assert stream.next(timeout=2.5) == SERVING
    assert served.check("/late") == SERVING


def test_list_names_every_endpoint_with_its_status(serve: Serve) -> None:
    health, flag = flagged()
    health.endpoint("/api/v1/health", format="envelope")
    served = serve(health)
    until(lambda: served.check(""), SERVING)
    names = {"", "liveness", "readiness", "startup", "/health", "/health/info", "/api/v1/health"}
    assert served.listing() == dict.fromkeys(names, SERVING)
    flag.ok = False  # a critical check that is not tagged live
    until(lambda: served.check(""), NOT_SERVING)
    assert served.listing() == {
        **dict.fromkeys(names, NOT_SERVING),
        "liveness": SERVING,
        "startup": SERVING,  # every check has completed once
    }


def test_drain_fails_readiness_and_the_whole_not_liveness(serve: Serve) -> None:
    health, _ = flagged()
    served = serve(health)
    until(lambda: served.check(""), SERVING)
    stream = served.watch("readiness")
    assert stream.next() == SERVING
    health.drain()
    assert stream.next() == NOT_SERVING
    assert served.check("") == NOT_SERVING
    assert served.check("liveness") == SERVING


def test_the_server_stopping_ends_every_watch(serve: Serve) -> None:
    health, _ = flagged()
    served = serve(health)
    until(lambda: served.check(""), SERVING)
    streams = [served.watch(name) for name in ("", "liveness", "unknown")]
    assert [s.next() for s in streams] == [SERVING, SERVING, SERVICE_UNKNOWN]
    assert served.servicer.watching == 3
    served.stop_server()
    for stream in streams:  # each call ends (an error status: the server went away)
        assert stream.next() in ("UNAVAILABLE", "CANCELLED")
    until(lambda: served.servicer.watching, 0, bound=2.5)  # sooner than its longest sleep
    assert served.leftovers() == []


def test_a_client_cancelling_ends_its_watch(serve: Serve) -> None:
    health, _ = flagged()
    served = serve(health)
    stream = served.watch("liveness")
    assert stream.next() == SERVING  # liveness passes before the first round
    assert served.servicer.watching == 1
    stream.cancel()
    until(lambda: served.servicer.watching, 0, bound=2.5)  # sooner than its longest sleep


def test_a_thousand_checks_run_no_check(serve: Serve) -> None:
    health, flag = flagged(interval=60)
    served = serve(health)
    until(lambda: served.check(""), SERVING)
    assert flag.runs == 1
    answers = [served.check(name) for name in ("", "liveness", "readiness", "startup") * 250]
    assert answers == [SERVING] * 1000
    assert flag.runs == 1


def test_an_expired_snapshot_is_not_serving_without_a_publish(serve: Serve) -> None:
    health, _ = flagged(stale_after=2.0)
    published: list[float] = []
    health.engine.callbacks.on_publish(lambda _: published.append(time.monotonic()))
    served = serve(health)
    until(lambda: served.check("liveness"), SERVING)
    stream = served.watch("liveness")
    assert stream.next() == SERVING
    served.stop_health()  # the refresher stops: nothing publishes from now on
    stopped = time.monotonic()
    assert stream.next(timeout=3.5) == NOT_SERVING  # woken by the expiry itself
    assert not [at for at in published if at > stopped]
    assert served.check("liveness") == NOT_SERVING
    assert health.runtime.running is None  # stopped on purpose: a call does not revive it


def test_watches_are_bounded(serve: Serve) -> None:
    health, _ = flagged()
    served = serve(health, max_watches=1)
    first = served.watch("liveness")
    assert first.next() == SERVING
    assert served.watch("liveness").next() == "UNIMPLEMENTED"  # fails open, per the protocol
    assert served.check("liveness") == SERVING  # the server still answers
    first.cancel()
    until(lambda: served.servicer.watching, 0)
    assert served.watch("liveness").next() == SERVING


def test_the_first_call_starts_the_refresher_not_the_constructor(serve: Serve) -> None:
    health, flag = flagged()
    served = serve(health)
    time.sleep(0.3)
    assert (health.activated, health.runtime.running, flag.runs) == (False, None, 0)
    assert served.check("liveness") == SERVING
    assert health.activated
    until(lambda: flag.runs > 0, True)


def test_wait_first_round_answers_the_first_call_from_the_first_round(serve: Serve) -> None:
    health, flag = flagged(wait_first_round=True)
    served = serve(health)
    assert served.check("") == SERVING  # not "starting"
    assert flag.runs >= 1


def test_service_names() -> None:
    paths = ["/health", "/health/live", "/health/ready", "/health/started", "/health/info"]
    assert service_names([*paths, "/api/v1/health"], "/health") == {
        "/health": "/health",
        "liveness": "/health/live",
        "readiness": "/health/ready",
        "": "/health/ready",
        "startup": "/health/started",
        "/health/info": "/health/info",
        "/api/v1/health": "/api/v1/health",
    }
    root = service_names(["/", "/live", "/ready", "/started", "/info"], "/")
    assert root == {
        "/": "/",
        "liveness": "/live",
        "readiness": "/ready",
        "": "/ready",
        "startup": "/started",
        "/info": "/info",
    }


def test_wrong_arguments_name_the_fix() -> None:
    with pytest.raises(TypeError, match="Health object"):
        HealthServicer(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_watches"):
        AsyncHealthServicer(Health(), max_watches=0)


@pytest.mark.server
@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_grpc_server_process(kind: str, tmp_path: Path) -> None:
    """The servicer in a process of its own, as deployed: the first probe starts its
    refresher; a failing check flips ``""``; SIGTERM stops it cleanly."""
    flag = tmp_path / "flag"
    env = {"HM_FLAG": str(flag), "HM_INTERVAL": "0.2"}
    args = ["tests.apps.grpc_server", kind, "{port}"]
    with server(args, env, ready=lambda port: grpc_check(port, "liveness") == SERVING) as running:
        until(lambda: grpc_check(running.port), SERVING)
        flag.touch()
        until(lambda: grpc_check(running.port), NOT_SERVING)
        flag.unlink()
        until(lambda: grpc_check(running.port), SERVING)
    assert running.exit_code == 0, running.output()
    runs = int(running.output().split("check runs: ")[1].split()[0])
    assert runs >= 3


def test_a_watch_that_falls_behind_keeps_the_newest_changes_and_sends_no_repeat() -> None:
    from health_middleware.grpc import services as module

    feed = module.Feed("", lambda: None)
    feed.offer(SERVING)
    assert feed.take() == [SERVING]
    changes = [NOT_SERVING, SERVING] * module.PENDING
    for status in changes[: module.PENDING + 1]:  # one change more than the queue holds
        feed.offer(status)
    taken = feed.take()
    assert taken[-1] == changes[module.PENDING]  # the newest status is never lost
    assert taken[0] == NOT_SERVING  # the oldest dropped, and no repeat of the last sent
    assert all(a != b for a, b in itertools.pairwise(taken))
