"""The gRPC row: ``Check`` calls per second through our servicers against
grpcio-health-checking's own, each on the same kind of server (a sync ``grpc.server``
with 8 threads, a ``grpc.aio`` server), served by tests/apps/grpc_server.py pinned to
one core and loaded from a process of its own on the other core: ``CHANNELS``
connections with ``IN_FLIGHT`` calls in flight, each a ``Check("")`` (grpc.aio client).

    python -m benchmarks.grpccheck PORT SECONDS    # the load alone: prints one JSON line
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from benchmarks.endtoend import cores, pinned
from benchmarks.spread import percentile
from tests.support import REPO, grpc_check, server

KINDS = ("sync", "aio")
SERVICERS = {"ours": "", "grpcio-health-checking": "reference-"}  # -> tests.apps.grpc_server
CHANNELS = 4  # connections, each its own channel (no shared subchannel)
IN_FLIGHT = 16  # calls outstanding at any time, spread over the connections
SERVING = health_pb2.HealthCheckResponse.SERVING
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    kind: str  # sync or aio
    servicer: str  # ours or grpcio-health-checking
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu: float  # the server's CPU time over the load's wall time (1.0: one core)
    cpu_us_per_call: float  # the server's CPU time per call answered, in microseconds
    check_runs_per_s: float  # over the server's life (nan: it runs no checks)


def _serving(port: int) -> bool:
    """Whether the server answers ``Check("")`` SERVING (ours: its first round done)."""
    return bool(grpc_check(port) == SERVING)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def measure(kind: str, servicer: str, seconds: float) -> Run:
    """One load of ``seconds`` against a fresh server of ``kind`` with ``servicer``."""
    server_cores, load_cores = cores() or (None, None)
    args = ["tests.apps.grpc_server", SERVICERS[servicer] + kind, "{port}"]
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        with pinned(server_cores):
            running = stack.enter_context(server(args, ready=_serving))
        command = [sys.executable, "-m", "benchmarks.grpccheck", str(running.port)]
        with pinned(load_cores):
            _load([*command, "0.5"])  # warm-up: connections made, code paths hot
            cpu_before, wall_before = _cpu_seconds(running.process.pid), time.monotonic()
            result = _load([*command, str(seconds)], timeout=seconds + 60)
            cpu = _cpu_seconds(running.process.pid) - cpu_before
            wall = time.monotonic() - wall_before
    lived = time.monotonic() - started
    output = running.output()
    runs = float(output.split("check runs: ")[1].split()[0]) if "check runs: " in output else 0
    row = Run(
        kind,
        servicer,
        result.get("calls_per_s", 0.0),
        result.get("p50_ms", float("nan")),
        result.get("p99_ms", float("nan")),
        int(result.get("errors", 0)),
        cpu / wall,
        cpu * 1e6 / result["calls"] if result.get("calls") else float("nan"),
        runs / lived if servicer == "ours" else float("nan"),
    )
    print(
        f"  grpc {kind} {servicer}: {row.calls_per_s:,.0f} Check/s, p99 {row.p99_ms:.2f} ms, "
        f"server CPU {row.server_cpu:.0%}, {row.cpu_us_per_call:.0f} µs a call",
        file=sys.stderr,
        flush=True,
    )
    return row


def _load(command: list[str], timeout: float = 60.0) -> dict[str, float]:
    done = subprocess.run(
        command,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        print(f"  the gRPC load failed:\n{done.stdout}{done.stderr}", file=sys.stderr)
        return {}
    result: dict[str, float] = json.loads(lines[-1])
    return result


async def load(port: int, seconds: float) -> dict[str, float]:
    """``Check("")`` as fast as ``IN_FLIGHT`` callers over ``CHANNELS`` connections go."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options) for _ in range(CHANNELS)]
    stubs = [health_pb2_grpc.HealthStub(channel) for channel in channels]
    request = health_pb2.HealthCheckRequest(service="")
    for stub in stubs:  # each connection made before the clock starts
        await stub.Check(request, timeout=5)
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def caller(stub: Any) -> None:
        nonlocal errors
        while loop.time() < deadline:
            began = time.perf_counter()
            try:
                await stub.Check(request, timeout=2)
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies.append((time.perf_counter() - began) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(caller(stubs[i % CHANNELS]) for i in range(IN_FLIGHT)))
    elapsed = time.perf_counter() - began
    for channel in channels:
        await channel.close()
    return {
        "calls": len(latencies),
        "calls_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "errors": errors,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(load(int(sys.argv[1]), float(sys.argv[2])))))
