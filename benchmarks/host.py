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
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.endtoend import cores, parse_wrk, pinned, private_state, wrk_command
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
    """``server`` started on the server's core (its workers inherit it), its instance
    database in a private folder unless ``env`` names one."""
    with contextlib.ExitStack() as stack:
        named = "HEALTH_MIDDLEWARE_STATE_DIR" in env
        full = env if named else {**stack.enter_context(private_state()), **env}
        with pinned((cores() or (None, None))[0]):
            running = stack.enter_context(server(args, full, ready=ready))
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
    failed: int  # polls that got no answer (each counts as not agreeing)
    windows_ms: list[float]  # per flip: last poll not new - first new (inf: never agreed)
    detect_ms: list[float]  # per flip: the flip - the first poll with the new status


HOLD = 1.5  # seconds every poll must show one status for the workers to agree
AGREE_WITHIN = INTERVAL * 4 + 2  # past this after a flip, the workers never agreed


def _poll_until_agreed(port: int, want: int, since: float) -> tuple[float, float, int, int]:
    """Poll /health/ready until every answer has been ``want`` for HOLD seconds, or
    AGREE_WITHIN seconds from ``since`` have passed; return (the first poll showing
    ``want``, the last poll showing anything else (a failed poll included) or nan,
    polls, failed polls). A worker that never agrees leaves the last time unheld."""
    first = last_other = math.nan
    polls = failed = 0
    held_since = since
    while True:
        now = time.monotonic()
        status = _body(port, "/health/ready")[0]
        polls += 1
        failed += status == 0
        if status == want:
            if math.isnan(first):
                first = now
        else:
            last_other, held_since = now, now
        if not math.isnan(first) and now - held_since >= HOLD:
            return first, last_other, polls, failed
        if now - since > AGREE_WITHIN:
            return first, math.inf, polls, failed


def agreement(name: str, workers: int = 4, flips: int = 5) -> Agreement:
    """Flip the flag ``flips`` times; after each flip poll /health/ready on fresh
    connections as fast as one client can until every answer has been the new status
    for 1.5 s (the workers agree), so each flip starts from agreement."""
    windows: list[float] = []
    detects: list[float] = []
    polls = failed = 0
    with flagged(name, workers) as (running, flag, _):
        warm(running, workers)
        # Every worker ready first: one 200 is not enough (a worker still starting
        # answers 503 "not completed yet", which the first flip would count as the
        # new status arriving at once and the others' 200 as a disagreement).
        _, ready, _, _ = _poll_until_agreed(running.port, 200, time.monotonic())
        if math.isinf(ready):
            _note(f"{name} -w {workers}: the workers never all answered 200 before the flips")
        for _ in range(flips):
            # At a random point of the check's interval: each flip waits for agreement,
            # which would otherwise put every flip at the same phase of the schedule.
            time.sleep(random.uniform(0.0, INTERVAL))
            new = 200 if flag.exists() else 503
            flag.unlink() if flag.exists() else flag.touch()
            flipped = time.monotonic()
            first_new, last_other, n, lost = _poll_until_agreed(running.port, new, flipped)
            polls, failed = polls + n, failed + lost
            detects.append(math.inf if math.isnan(first_new) else (first_new - flipped) * 1000)
            if math.isnan(first_new) or math.isinf(last_other):
                windows.append(math.inf)  # never agreed within AGREE_WITHIN
            elif math.isnan(last_other) or last_other < first_new:
                windows.append(0.0)
            else:
                windows.append((last_other - first_new) * 1000)
    row = Agreement(name, workers, flips, polls, failed, windows, detects)
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
    kept_alive: bool  # whether the worker kept for the whole run still runs
    rss_mib: float  # the kept worker's resident memory
    threads: int  # the kept worker's threads
    files: int  # the kept worker's file descriptors that are not sockets
    sockets: int  # socket descriptors of all workers together
    master_fds: int  # the arbiter's descriptors (a recycled worker must leave none behind)
    database_kib: float  # the instance database's logical size (page_count, the WAL's too)
    wal_kib: float  # its WAL file (reset by checkpoints; shown, not judged)


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
        """Per figure: its value at the first sample, its last value, and whether it
        stayed flat (within a tolerance for noise: 2 MiB + 2 % of memory, one thread, one
        file, 8 sockets as wrk's connections move between workers, 64 KiB of database).
        The worker figures are those of the one worker kept for the whole run: a worker
        recycled every few minutes could never show a slow leak."""
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
        if any(not s.kept_alive for s in self.samples):
            return False  # the kept worker died: nothing to judge it by, and a failure
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


def _database_kib(folder: Path) -> tuple[float, float]:
    """The instance databases' logical size (pages, those still in the WAL included:
    the main file alone changes only at checkpoints), nan where one cannot be read;
    and the size of their WAL files (bounded by checkpoints; reported, not judged)."""
    total = 0.0
    for path in folder.glob("*/*.sqlite3"):  # in the private state folder
        try:
            db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=1.0)
            try:
                pages = db.execute("PRAGMA page_count").fetchone()[0]
                total += pages * db.execute("PRAGMA page_size").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error as exc:
            _note(f"long run: {path.name} could not be read ({exc}): not judged")
            total = math.nan
    wal = sum(p.stat().st_size for p in folder.glob("*/*.sqlite3-wal") if p.exists())
    return total / 1024, wal / 1024


def long_run(minutes: float) -> LongRun:
    """``minutes`` of wrk load on gunicorn gthread with 2 workers, the check flapping
    (its flag flipped every 2 s), sampled each minute (each third of the run, for runs
    under 3 minutes). One worker is kept for the whole run and judged over it; the
    other is recycled every second period: sent SIGTERM, which a gunicorn worker
    handles as it handles reaching --max-requests (it finishes its requests and exits;
    the arbiter starts another). --max-requests itself would recycle both workers
    within seconds at this machine's rate, and no worker would live long enough to
    show a leak."""
    seconds = minutes * 60
    period = 60.0 if minutes >= 3 else seconds / 3
    args = gunicorn(
        "tests.apps.flagged:wsgi_app", "-k", "gthread", "--threads", "4",
        "-w", str(LONG_WORKERS), "--log-level", "warning",
    )  # fmt: skip
    samples: list[Sample] = []
    seen: set[int] = set()
    flips = recycles = 0
    with tempfile.TemporaryDirectory(prefix="bench-long-") as tmp, private_state() as own:
        flag, state = Path(tmp) / "flag", Path(own["HEALTH_MIDDLEWARE_STATE_DIR"])
        env = {"HM_FLAG": str(flag), "HM_INTERVAL": "0.5", "HM_TIMEOUT": "0.5", **own}
        with pinned_server(args, env) as running:
            arbiter = running.process.pid
            kept = min(warm(running, LONG_WORKERS) or _children(arbiter))
            started = time.monotonic()
            with pinned((cores() or (None, None))[1]):
                wrk = subprocess.Popen(
                    wrk_command(running.port, "/health/ready", seconds),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            next_flip, next_sample = started + 2, started + period * 0.97
            next_recycle = started + RECYCLE_EVERY * period
            while wrk.poll() is None:
                now = time.monotonic()
                if now >= next_flip:
                    flag.unlink() if flag.exists() else flag.touch()
                    flips += 1
                    next_flip += 2
                if now >= next_recycle and now < started + seconds - period / 2:
                    next_recycle += RECYCLE_EVERY * period
                    children = _children(arbiter)
                    if kept not in children:  # the verdict fails it
                        _note(f"long run: the kept worker {kept} is gone; no more recycles")
                        next_recycle, children = math.inf, []
                    for pid in (pid for pid in children if pid != kept):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGTERM)
                            recycles += 1
                if now >= next_sample and len(samples) < round(seconds / period):
                    next_sample += period
                    samples.append(_sample(now - started, arbiter, kept, seen, state))
                    _note(f"long run, minute {samples[-1].minute:.1f}: {samples[-1]}")
                time.sleep(0.2)
            output = wrk.communicate()[0]
    rps, _, _, errors, non_2xx = parse_wrk(output)
    return LongRun(minutes, samples, rps, non_2xx, errors, flips, recycles)


def _sample(elapsed: float, arbiter: int, kept: int, seen: set[int], state: Path) -> Sample:
    workers = {pid: f for pid in _children(arbiter) if (f := _proc(pid)) is not None}
    seen.update(workers)
    mine, master = workers.get(kept), _proc(arbiter)
    return Sample(
        elapsed / 60,
        len(workers),
        len(seen),
        mine is not None,
        mine[0] if mine else math.nan,
        mine[1] if mine else 0,
        mine[2] if mine else 0,
        sum(f[3] for f in workers.values()),
        (master[2] + master[3]) if master else 0,
        *_database_kib(state),
    )
