"""The host rows: several workers of one server on one host, run by the app of
tests/apps/flagged.py (one check that fails while a flag file exists and logs each run
to the file named by ``HM_RUNS``) or by the saturating apps of benchmarks/apps.py.

- check runs per host against 1, 2 and 4 workers under a wrk load (one run per interval
  for the whole server, not one per worker);
- the window in which the workers disagree right after a result changes;
- probe latency while every worker is saturated, on the main port and on the probe port
  (``HEALTH_MIDDLEWARE_LISTEN``) where this version has one;
- the long run: memory, threads and file descriptors per worker over minutes of load
  with flapping checks and recycled workers.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.endtoend import cores, parse_wrk, pinned, wrk_command
from benchmarks.spread import percentile
from health_middleware import Health
from tests.support import Server, free_port, get, gunicorn, server, uvicorn

INTERVAL = 1.0  # the check's interval in the runs-per-host and agreement rows
_UVICORN = ("--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning")
MULTI = {
    "gunicorn-sync": lambda app, n: gunicorn(
        f"tests.apps.flagged:{app}_app", "-k", "sync", "-w", str(n), "--log-level", "warning"
    ),
    "uvicorn": lambda app, n: uvicorn(
        f"tests.apps.flagged:{app}_app", "--workers", str(n), *_UVICORN
    ),
}
KIND = {"gunicorn-sync": "wsgi", "uvicorn": "asgi"}
HAS_PROBE_PORT = hasattr(Health, "listen")
NO_PROBE_PORT = "n/a (no probe port in this version)"


def _note(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def _body(port: int, path: str) -> tuple[int, str]:
    try:
        response = get(port, path, timeout=5)
    except (OSError, http.client.HTTPException):
        return 0, ""
    return response.status, response.body.decode(errors="replace")


def warm(running: Server, workers: int, bound: float = 15.0) -> set[int]:
    """Requests on fresh connections until every worker has answered (a WSGI worker
    starts its checks on its first request); the workers' pids."""
    pids: set[int] = set()
    deadline = time.monotonic() + bound
    while len(pids) < workers and time.monotonic() < deadline:
        _, body = _body(running.port, "/")
        with contextlib.suppress(IndexError, ValueError):
            pids.add(int(body.rsplit(":", 1)[1]))
        _body(running.port, "/health/ready")
    return pids


def _starts(runs: Path) -> list[tuple[int, float]]:
    """The check's runs as the app logged them: (pid, time it started)."""
    if not runs.exists():
        return []
    found = []
    for line in runs.read_text().splitlines():
        pid, at, what = line.split()
        if what == "start":
            found.append((int(pid), float(at)))
    return found


@contextlib.contextmanager
def pinned_server(
    args: list[str], env: dict[str, str], ready: str = "/health/live"
) -> Iterator[Server]:
    """``server`` started on the server's core (its workers inherit it)."""
    with contextlib.ExitStack() as stack:
        with pinned((cores() or (None, None))[0]):
            running = stack.enter_context(server(args, env, ready=ready))
        yield running


@contextlib.contextmanager
def flagged(name: str, workers: int, **env: str) -> Iterator[tuple[Server, Path, Path]]:
    """``name`` with ``workers`` workers serving tests/apps/flagged.py on the server's core;
    yields it with its flag file and its runs file."""
    with tempfile.TemporaryDirectory(prefix="bench-host-") as tmp:
        flag, runs = Path(tmp) / "flag", Path(tmp) / "runs"
        full = {
            "HM_FLAG": str(flag),
            "HM_RUNS": str(runs),
            "HM_INTERVAL": str(INTERVAL),
            "HM_TIMEOUT": "0.5",
            "HM_JITTER": "0",
            **env,
        }
        with pinned_server(MULTI[name](KIND[name], workers), full) as running:
            yield running, flag, runs


# -- check runs per host ---------------------------------------------------------------------


@dataclass
class HostRuns:
    server: str
    workers: int
    seconds: float
    runs: int  # check runs that started in the window, all workers together
    runs_per_s: float  # from the spacing of those runs: (runs - 1) / (last - first)
    running_pids: int  # how many workers ran the check
    rps: float  # the wrk load meanwhile

    @property
    def expected_per_s(self) -> float:
        return 1.0 / INTERVAL


def runs_per_host(name: str, workers: int, seconds: float) -> HostRuns:
    with flagged(name, workers) as (running, _, runs):
        warm(running, workers)
        time.sleep(INTERVAL)
        started = time.time()
        with pinned((cores() or (None, None))[1]):
            result = subprocess.run(
                wrk_command(running.port, "/health/ready", seconds),
                capture_output=True,
                text=True,
                timeout=seconds + 60,
                check=False,
            )
        ended = time.time()
        window = [(pid, at) for pid, at in _starts(runs) if started <= at < ended]
    rps = parse_wrk(result.stdout)[0]
    span = window[-1][1] - window[0][1] if len(window) > 1 else 0.0
    rate = (len(window) - 1) / span if span > 0 else math.nan
    row = HostRuns(
        name, workers, ended - started, len(window), rate, len({p for p, _ in window}), rps
    )
    _note(f"{name} -w {workers}: {row.runs} check runs in {row.seconds:.1f} s ({rate:.2f}/s)")
    return row


# -- agreement after a change ----------------------------------------------------------------


@dataclass
class Agreement:
    server: str
    workers: int
    flips: int
    polls: int
    windows_ms: list[float]  # per flip: last poll with the old status - first with the new
    detect_ms: list[float]  # per flip: the flip - the first poll with the new status


def agreement(name: str, workers: int = 4, flips: int = 5) -> Agreement:
    """Flip the flag ``flips`` times; between flips poll /health/ready on fresh
    connections as fast as one client can until the new status has held for 1.5 s."""
    windows: list[float] = []
    detects: list[float] = []
    polls = 0
    with flagged(name, workers) as (running, flag, _):
        warm(running, workers)
        # Every worker ready first: one 200 is not enough (a worker still starting
        # answers 503 "not completed yet", which the first flip would count as the
        # new status arriving at once and the others' 200 as a disagreement).
        deadline, held_since = time.monotonic() + 15, time.monotonic()
        while time.monotonic() - held_since < 1.0 and time.monotonic() < deadline:
            if _body(running.port, "/health/ready")[0] != 200:
                held_since = time.monotonic()
        for _ in range(flips):
            old = 200 if not flag.exists() else 503
            new = 503 if old == 200 else 200
            flag.unlink() if flag.exists() else flag.touch()
            flipped = time.monotonic()
            first_new = last_old = math.nan
            while True:
                now = time.monotonic()
                status = _body(running.port, "/health/ready")[0]
                polls += 1
                if status == new and math.isnan(first_new):
                    first_new = now
                elif status == old:
                    last_old = now
                if not math.isnan(first_new) and now - first_new > 1.5:
                    break
                if now - flipped > INTERVAL * 4 + 2:
                    break  # never changed: the row shows it
            if math.isnan(first_new):
                detects.append(math.inf)
                windows.append(math.inf)
                continue
            detects.append((first_new - flipped) * 1000)
            late = last_old - first_new if not math.isnan(last_old) else 0.0
            windows.append(max(0.0, late) * 1000)
    row = Agreement(name, workers, flips, polls, windows, detects)
    _note(f"{name} -w {workers}: disagreement windows {[f'{w:.0f}' for w in windows]} ms")
    return row


# -- probe latency under saturation ----------------------------------------------------------


@dataclass
class ProbeLatency:
    load: str
    port: str  # "main" or "probe"
    probes: list[float] = field(default_factory=list)  # ms; failures count as the timeout
    failures: int = 0
    work_done: int = 0  # the saturating requests that completed meanwhile
    skipped: str = ""

    def at(self, share: float) -> float:
        return percentile(self.probes, share)


PROBE_TIMEOUT = 10.0
SATURATION = {
    # every worker of a 2-worker sync gunicorn busy with 2 s requests (4 clients)
    "gunicorn-sync -w 2, 2 s requests": (
        gunicorn(
            "benchmarks.apps:slow_wsgi", "-k", "sync", "-w", "2", "--timeout", "60",
            "--log-level", "warning",
        ),
        2,
        4,
    ),
    # one uvicorn worker whose loop spends 200 ms of CPU on each request (8 clients)
    "uvicorn 1 worker, 200 ms CPU requests": (
        uvicorn("benchmarks.apps:cpu_asgi", *_UVICORN),
        1,
        8,
    ),
}  # fmt: skip


def probe_latency(load: str, port: str, seconds: float) -> ProbeLatency:
    """One probe every 0.1 s for ``seconds`` (each on its own thread and connection, so a
    slow one does not delay the next) while ``load``'s clients keep every worker busy."""
    row = ProbeLatency(load, port)
    if port == "probe" and not HAS_PROBE_PORT:
        row.skipped = NO_PROBE_PORT
        return row
    args = SATURATION[load][0]
    probe_port = free_port()
    env = {"HEALTH_MIDDLEWARE_LISTEN": f"127.0.0.1:{probe_port}"} if port == "probe" else {}
    with pinned_server(args, env, ready="/_runs") as running:
        _saturate(row, running, probe_port if port == "probe" else running.port, seconds)
    _note(
        f"{load}, {port} port: p50 {row.at(0.5):.1f} ms, p99 {row.at(0.99):.1f} ms, "
        f"max {max(row.probes, default=math.nan):.1f} ms, {row.failures} failed"
    )
    return row


def _saturate(row: ProbeLatency, running: Server, target: int, seconds: float) -> None:
    _, workers, clients = SATURATION[row.load]
    stop = threading.Event()
    done = [0]
    lock = threading.Lock()

    def work() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError, http.client.HTTPException):
                get(running.port, "/work", timeout=60)
                done[0] += 1

    def probe(target: int) -> None:
        started = time.monotonic()
        try:
            ok = get(target, "/health/live", timeout=PROBE_TIMEOUT).status == 200
        except (OSError, http.client.HTTPException):
            ok = False
        elapsed = (time.monotonic() - started) * 1000 if ok else PROBE_TIMEOUT * 1000
        with lock:
            row.probes.append(elapsed)
            row.failures += not ok

    try:
        for _ in range(workers * 4):  # every worker started, its checks run once
            _body(running.port, "/health/live")
        time.sleep(1.5)
        busy = [threading.Thread(target=work, daemon=True) for _ in range(clients)]
        for thread in busy:
            thread.start()
        time.sleep(1.0)  # every worker busy
        probes = []
        next_at = time.monotonic()
        end = next_at + seconds
        while next_at < end:
            thread = threading.Thread(target=probe, args=(target,), daemon=True)
            thread.start()
            probes.append(thread)
            next_at += 0.1
            time.sleep(max(0.0, next_at - time.monotonic()))
        for thread in probes:
            thread.join(PROBE_TIMEOUT + 5)
        stop.set()
        row.work_done = done[0]
    finally:
        stop.set()


# -- the long run ----------------------------------------------------------------------------


@dataclass
class Sample:
    minute: float
    workers: int
    pids_seen: int  # every worker pid seen so far (recycled workers add to it)
    rss_mib: float  # the largest worker's resident memory
    threads: int  # the most threads in a worker
    files: int  # the most file descriptors in a worker that are not sockets
    sockets: int  # socket descriptors of all workers together
    master_fds: int  # the arbiter's descriptors (a recycled worker must leave none behind)
    database_kib: float  # the instance database's main file (its WAL is bounded by checkpoints)


@dataclass
class LongRun:
    minutes: float
    samples: list[Sample]
    rps: float
    non_2xx: int
    errors: int
    flips: int
    recycles: int

    def growth(self) -> dict[str, tuple[float, float, bool]]:
        """Per figure: its value after the first minute, its last value, and whether it
        stayed flat (within a tolerance for noise: 2 MiB + 2 % of memory, one thread, one
        file, 8 sockets as wrk's connections move between workers)."""
        if len(self.samples) < 2:
            return {}
        first, last = self.samples[0], self.samples[-1]
        result = {}
        for name, tolerance in (
            ("rss_mib", 2.0 + 0.02 * first.rss_mib),
            ("threads", 1.0),
            ("files", 1.0),
            ("sockets", 8.0),
            ("master_fds", 1.0),
            ("database_kib", 64.0),
        ):
            before, after = float(getattr(first, name)), float(getattr(last, name))
            result[name] = (before, after, after - before <= tolerance)
        return result

    @property
    def flat(self) -> bool | None:
        growth = self.growth()
        return all(ok for _, _, ok in growth.values()) if growth else None


def _proc(pid: int) -> tuple[float, int, int, int] | None:
    """(RSS in MiB, threads, non-socket fds, socket fds) of a process, from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss = int(fields["VmRSS"].split()[0]) / 1024
        threads = int(fields["Threads"])
        links = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    except (OSError, KeyError, ValueError):
        return None
    sockets = sum(link.startswith("socket:") for link in links)
    return rss, threads, len(links) - sockets, sockets


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry))
    return found


LONG_WORKERS = 2
RECYCLE_EVERY = 2  # sampling periods between two worker recycles


def _database_kib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("*.sqlite3")) / 1024


def long_run(minutes: float) -> LongRun:
    """``minutes`` of wrk load on gunicorn gthread with 2 workers, the check flapping
    (its flag flipped every 2 s), sampled each minute (each third of the run, for runs
    under 3 minutes); every second period the oldest worker is recycled: sent SIGTERM,
    which a gunicorn worker handles as it handles reaching --max-requests (it finishes
    its requests and exits; the arbiter starts another). A worker's life then spans
    several samples, which --max-requests at this machine's rate would not allow: a
    worker that leaks shows it, and every recycle shows what it leaves behind."""
    seconds = minutes * 60
    period = 60.0 if minutes >= 3 else seconds / 3
    args = gunicorn(
        "tests.apps.flagged:wsgi_app", "-k", "gthread", "--threads", "4",
        "-w", str(LONG_WORKERS), "--log-level", "warning",
    )  # fmt: skip
    samples: list[Sample] = []
    born: dict[int, float] = {}  # worker pid -> when first seen
    flips = recycles = 0
    with tempfile.TemporaryDirectory(prefix="bench-long-") as tmp:
        flag, state = Path(tmp) / "flag", Path(tmp) / "state"
        state.mkdir()
        env = {
            "HM_FLAG": str(flag),
            "HM_INTERVAL": "0.5",
            "HM_TIMEOUT": "0.5",
            "HEALTH_MIDDLEWARE_STATE_DIR": str(state),
        }
        with pinned_server(args, env) as running:
            warm(running, LONG_WORKERS)
            started = time.monotonic()
            next_recycle = started + RECYCLE_EVERY * period
            with pinned((cores() or (None, None))[1]):
                wrk = subprocess.Popen(
                    wrk_command(running.port, "/health/ready", seconds),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            next_flip, next_sample = started + 2, started + period * 0.97
            while wrk.poll() is None:
                now = time.monotonic()
                if now >= next_flip:
                    flag.unlink() if flag.exists() else flag.touch()
                    flips += 1
                    next_flip += 2
                if now >= next_recycle and now < started + seconds - period / 2:
                    next_recycle += RECYCLE_EVERY * period
                    alive = [pid for pid in _children(running.process.pid) if pid in born]
                    if alive:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(min(alive, key=born.__getitem__), signal.SIGTERM)
                            recycles += 1
                if now >= next_sample and len(samples) < round(seconds / period):
                    next_sample += period
                    workers = {
                        pid: figures
                        for pid in _children(running.process.pid)
                        if (figures := _proc(pid)) is not None
                    }
                    for pid in workers:
                        born.setdefault(pid, now)
                    master = _proc(running.process.pid)
                    sample = Sample(
                        (now - started) / 60,
                        len(workers),
                        len(born),
                        max((f[0] for f in workers.values()), default=math.nan),
                        max((f[1] for f in workers.values()), default=0),
                        max((f[2] for f in workers.values()), default=0),
                        sum(f[3] for f in workers.values()),
                        (master[2] + master[3]) if master else 0,
                        _database_kib(state),
                    )
                    samples.append(sample)
                    _note(f"long run, minute {sample.minute:.1f}: {sample}")
                time.sleep(0.2)
            output = wrk.communicate()[0]
    rps, _, _, errors, non_2xx = parse_wrk(output)
    return LongRun(minutes, samples, rps, non_2xx, errors, flips, recycles)
