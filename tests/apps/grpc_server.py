"""A gRPC server process with the standard health service, for the tests and the
benchmark::

    python -m tests.apps.grpc_server KIND PORT

KIND: ``sync`` or ``aio`` (ours: ``HealthServicer`` on ``grpc.server``,
``AsyncHealthServicer`` on ``grpc.aio``), ``reference-sync`` or ``reference-aio``
(grpcio-health-checking's own servicers, ``""`` set SERVING by hand). Ours answer
from a ``Health`` whose one check fails while the file HM_FLAG exists (interval
HM_INTERVAL seconds). The sync servers have HM_THREADS threads (default 8).

SIGTERM, as the documentation's Kubernetes page shows it: ours drain (readiness and ``""`` turn
NOT_SERVING, so Watch clients move away), wait HM_DRAIN_DELAY seconds (default 0),
then stop the server (1 s of grace) and the refresher; print ``check runs: N`` and
exit 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health as reference
from grpc_health.v1 import health_pb2, health_pb2_grpc

from health_middleware import Health
from health_middleware.grpc import AsyncHealthServicer, HealthServicer

FLAG = Path(os.environ.get("HM_FLAG", "/nonexistent/flag"))
THREADS = int(os.environ.get("HM_THREADS", "8"))
DRAIN_DELAY = float(os.environ.get("HM_DRAIN_DELAY", "0"))
GRACE = 1.0

health = Health(service_id="grpc-app", interval=float(os.environ.get("HM_INTERVAL", "1")))
runs = 0


@health.check("flag")
def flag() -> bool:
    global runs
    runs += 1
    return not FLAG.exists()


def serve_sync(servicer: Any, port: int) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=THREADS))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    while not stopping.wait(0.5):
        pass
    health.drain()
    time.sleep(DRAIN_DELAY)
    server.stop(GRACE).wait()
    health.stop()


async def serve_aio(kind: str, port: int) -> None:
    if kind == "aio":
        servicer: Any = AsyncHealthServicer(health)
    else:
        servicer = reference.aio.HealthServicer()
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    await stopping.wait()
    health.drain()
    await asyncio.sleep(DRAIN_DELAY)
    await server.stop(GRACE)
    await health.stop_async()


def main(kind: str, port: int) -> None:
    if kind == "sync":
        serve_sync(HealthServicer(health), port)
    elif kind == "reference-sync":
        servicer = reference.HealthServicer()
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        serve_sync(servicer, port)
    elif kind in ("aio", "reference-aio"):
        asyncio.run(serve_aio(kind, port))
    else:
        raise SystemExit(f"unknown kind {kind!r}: sync, aio, reference-sync or reference-aio")
    print(f"check runs: {runs}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
