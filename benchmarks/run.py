"""Run every benchmark scenario, print one report, write benchmarks/RESULTS.md (and the
tables between the benchmark markers of the documentation's benchmarks page,
docs/benchmarks.md).

    python -m benchmarks.run [--duration 3] [--rounds 3] [--long MINUTES]
                             [--all-peers] [--in-process-only] [--only uvicorn,host:agree]

Speed is given as ratios against a baseline measured in the same run, so the results
carry over to another machine; each end-to-end figure is the median of interleaved
rounds with the lowest and highest round; each target is printed as met or missed.
``--only`` runs just the rows whose key contains one of its words (keys: ``in-process``,
``e2e:STACK:APP[:hung]``, ``host:runs:SERVER:WORKERS``, ``host:agree:SERVER``,
``host:probe:SERVER:PORT``, ``grpc:sync``, ``grpc:aio``, ``long``) and then writes no
file: it is for trying a row (``--only grpc`` runs the gRPC rows alone).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from benchmarks import endtoend, grpccheck, host, inprocess
from benchmarks.endtoend import Load, Scenario
from benchmarks.spread import Spread, ratio

RESULTS = Path(__file__).with_name("RESULTS.md")
PAGE = Path(__file__).parent.parent / "docs" / "benchmarks.md"
START, END = "<!-- benchmark-table -->", "<!-- /benchmark-table -->"

WORKERS = (1, 2, 4)
AGREE_WORKERS = 4
SERVERS = ("gunicorn-sync", "uvicorn")
PORTS = ("main", "probe")
# Seconds a scenario costs beyond its wrk run (start, warm-up, stop), for the estimate.
OVERHEAD = {"fastapi": 4.0, "starlette": 3.0, "django": 4.0, "flask": 3.0}
IN_PROCESS_SECONDS = 60.0


def _mark(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "MISSED")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


@dataclass
class Plan:
    """What this run measures, after ``--only``."""

    in_process: bool
    scenarios: list[Scenario]
    runs: list[tuple[str, int]]
    agree: list[str]
    probes: list[tuple[str, str]]
    grpc: list[str]  # the kinds of gRPC server (grpccheck.KINDS)
    long: float
    duration: float
    rounds: int

    @property
    def host_seconds(self) -> float:
        """The length of a host row's load: twice a wrk run, at least 2 s."""
        return max(2.0, 2 * self.duration)

    def estimate(self) -> float:
        """Seconds this plan should take on a 2-core machine."""
        seconds = IN_PROCESS_SECONDS if self.in_process else 0.0
        for scenario in self.scenarios:
            extra = next((v for k, v in OVERHEAD.items() if k in scenario.app), 2.5)
            if scenario.hung and scenario.role == "peer":
                extra += 3.0  # a peer that never answers: its readiness wait runs out
            seconds += self.rounds * (max(1, round(self.duration)) + extra)
        seconds += len(self.runs) * (self.host_seconds + 1 + 4)
        seconds += len(self.agree) * (5 * 3.5 + 5)
        probing = [p for p in self.probes if p[1] == "main" or host.HAS_PROBE_PORT]
        seconds += len(probing) * (self.host_seconds + 5 + 4)
        seconds += len(self.grpc) * len(grpccheck.SERVICERS) * self.rounds * (self.duration + 6)
        return seconds + (self.long * 60 + 10 if self.long else 0)


def only_words(args: argparse.Namespace) -> list[str]:
    """The words of ``--only`` (none: every row)."""
    return [w for w in (args.only or "").split(",") if w]


def make_plan(args: argparse.Namespace) -> Plan:
    words = only_words(args)

    def wanted(key: str) -> bool:
        return not words or any(word in key for word in words)

    return Plan(
        in_process=wanted("in-process"),
        scenarios=(
            []
            if args.in_process_only
            else [s for s in endtoend.scenarios(args.all_peers) if wanted(s.key)]
        ),
        runs=(
            []
            if args.in_process_only
            else [(s, n) for s in SERVERS for n in WORKERS if wanted(f"host:runs:{s}:{n}")]
        ),
        agree=[] if args.in_process_only else [s for s in SERVERS if wanted(f"host:agree:{s}")],
        probes=(
            []
            if args.in_process_only
            else [
                (load, port)
                for load in host.SATURATION
                for port in PORTS
                if wanted(f"host:probe:{load.split()[0]}:{port}")  # the load's server
            ]
        ),
        grpc=(
            []
            if args.in_process_only
            else [kind for kind in grpccheck.KINDS if wanted(f"grpc:{kind}")]
        ),
        long=args.long if args.long and wanted("long") else 0.0,
        duration=args.duration,
        rounds=args.rounds,
    )


# -- the end-to-end rows ---------------------------------------------------------------------


@dataclass
class Row:
    """One scenario over all its rounds."""

    scenario: Scenario
    loads: list[Load]

    def spread(self, figure: str) -> Spread:
        return Spread.of(getattr(load, figure) for load in self.loads)

    def values(self, figure: str) -> list[float]:
        return [float(getattr(load, figure)) for load in self.loads]


def interleaved(plan: Plan) -> list[Row]:
    """Each scenario ``rounds`` times, interleaved (round 1 of all, then round 2, ...)."""
    rows = {scenario: Row(scenario, []) for scenario in plan.scenarios}
    for number in range(plan.rounds):
        print(f"round {number + 1} of {plan.rounds}", file=sys.stderr, flush=True)
        for scenario in plan.scenarios:
            rows[scenario].loads.append(endtoend.measure(scenario, plan.duration))
    return list(rows.values())


def end_to_end(
    plan: Plan, rows: list[Row], targets: list[tuple[str, str, bool | None]]
) -> list[str]:
    lines = [
        "",
        f"## End to end (wrk, {endtoend.CONNECTIONS} connections, "
        f"{max(1, round(plan.duration))} s, median of {plan.rounds} (lowest-highest))",
        "",
        "One worker per server, pinned to one core, wrk on the other. "
        + "; ".join(
            f"`{s.name}`: `{' '.join(s.args('APP')).replace('{port}', 'PORT')}`"
            for s in endtoend.STACKS
        )
        + ".",
        "",
    ]
    lines += table(
        ["stack", "app", "hung dependency", "requests/s", "p50 ms", "p99 ms", "errors",
         "non-2xx", "check runs/s"],
        [
            (
                r.scenario.stack,
                r.scenario.app,
                "yes" if r.scenario.hung else "",
                r.spread("rps").show(),
                r.spread("p50_ms").show(2),
                r.spread("p99_ms").show(2),
                sum(load.errors for load in r.loads),
                sum(load.non_2xx for load in r.loads),
                r.spread("check_runs_per_s").show(1),
            )
            for r in rows
        ],
    )  # fmt: skip
    by = {(r.scenario.stack, r.scenario.role, r.scenario.app, r.scenario.hung): r for r in rows}
    ratio_rows = []
    for stack in endtoend.STACKS:
        mine = [r for r in rows if r.scenario.stack == stack.name and not r.scenario.hung]
        ours = next((r for r in mine if r.scenario.role == "ours"), None)
        bare = next((r for r in mine if r.scenario.role == "bare"), None)
        if ours is None:
            continue
        speed = p99 = Spread(())
        if bare is not None:
            speed = ratio(ours.values("rps"), bare.values("rps"))
            p99 = ratio(ours.values("p99_ms"), bare.values("p99_ms"))
            targets.append(
                (
                    f"{stack.name}: ours ÷ bare, requests/s (>= 0.97)",
                    speed.show(2),
                    _at_least(speed, 0.97),
                )
            )
            targets.append(
                (f"{stack.name}: our p99 ÷ bare's p99 (<= 1.1)", p99.show(2), _at_most(p99, 1.1))
            )
        peers = []
        for peer in (r for r in mine if r.scenario.role == "peer"):
            versus = ratio(ours.values("rps"), peer.values("rps"))
            peers.append(f"{peer.scenario.app} {versus.show(1, 'x')}")
            if stack.main and peer.scenario.app in endtoend.HUNG_APPS[stack.kind]:
                targets.append(
                    (
                        f"{stack.name}: ours ÷ {peer.scenario.app}, requests/s (>= 5)",
                        versus.show(1),
                        _at_least(versus, 5),
                    )
                )
        ratio_rows.append((stack.name, speed.show(2), p99.show(2), "; ".join(peers)))
        hung = by.get((stack.name, "ours", ours.scenario.app, True))
        if hung is not None:
            slower = ratio(hung.values("p99_ms"), ours.values("p99_ms"))
            targets.append(
                (
                    f"{stack.name}: our p99 with a hung check ÷ without (<= 1.1)",
                    slower.show(2),
                    _at_most(slower, 1.1),
                )
            )
            runs = ours.spread("check_runs_per_s")
            targets.append(
                (
                    f"{stack.name}: our check runs/s under a probe flood (= 1 check / 1 s)",
                    f"{runs.show(2)}/s at {ours.spread('rps').show()} probes/s",
                    None if not runs.values else 0.5 <= runs.median <= 1.5,
                )
            )  # fmt: skip
    lines += ["", "## End to end, ratios (round by round; median (lowest-highest))", ""]
    header = ["stack", "ours ÷ bare, requests/s", "our p99 ÷ bare's p99"]
    lines += table([*header, "ours ÷ each peer, requests/s"], ratio_rows)
    return lines


def _at_least(spread: Spread, bound: float) -> bool | None:
    return None if not spread.values else spread.median >= bound


def _at_most(spread: Spread, bound: float) -> bool | None:
    return None if not spread.values else spread.median <= bound


# -- the host rows ---------------------------------------------------------------------------


def host_rows(plan: Plan, targets: list[tuple[str, str, bool | None]]) -> list[str]:
    lines: list[str] = []
    if plan.runs:
        runs = [host.runs_per_host(name, n, plan.host_seconds) for name, n in plan.runs]
        lines += [
            "",
            f"## Check runs per host (one check, interval {host.INTERVAL:g} s, "
            f"under wrk load on /health/ready for {plan.host_seconds:g} s)",
            "",
        ]
        lines += table(
            ["server", "workers", "check runs", "runs/s", "expected runs/s",
             "workers that ran it", "requests/s meanwhile"],
            [
                (r.server, r.workers, r.runs, f"{r.runs_per_s:.2f}", f"{r.expected_per_s:.2f}",
                 r.running_pids, f"{r.rps:,.0f}")
                for r in runs
            ],
        )  # fmt: skip
        for r in runs:
            if r.workers == 4:
                met = None if math.isnan(r.runs_per_s) else (
                    abs(r.runs_per_s - r.expected_per_s) <= 0.1 * r.expected_per_s
                )  # fmt: skip
                targets.append(
                    (
                        f"{r.server} -w 4: check runs per host (= 1 / interval ± 10 %)",
                        f"{r.runs_per_s:.2f}/s",
                        met,
                    )
                )
    if plan.agree:
        agreed = [host.agreement(name, AGREE_WORKERS) for name in plan.agree]
        lines += [
            "",
            f"## Disagreement after a change ({AGREE_WORKERS} workers, interval "
            f"{host.INTERVAL:g} s, the flag flipped 5 times, /health/ready polled on fresh "
            "connections by one client as fast as it goes)",
            "",
            "Window: from the first poll showing the new status to the last poll not "
            "showing it (the old status, or no answer; 0 when none came after the first "
            f"new one; inf when the workers had not all shown the new status for "
            f"{host.HOLD:g} s within {host.AGREE_WITHIN:g} s of the flip). Each flip waits "
            "for that agreement. Detection: from the flip to the first poll showing the "
            "new status.",
            "",
        ]
        lines += table(
            ["server", "workers", "polls", "failed polls", "window median ms",
             "window max ms", "detection median ms", "detection max ms"],
            [
                (a.server, a.workers, a.polls, a.failed,
                 f"{Spread.of(a.windows_ms).median:.1f}", f"{max(a.windows_ms):.1f}",
                 f"{Spread.of(a.detect_ms).median:.0f}", f"{max(a.detect_ms):.0f}")
                for a in agreed
            ],
        )  # fmt: skip
    if plan.probes:
        probed = [host.probe_latency(load, port, plan.host_seconds) for load, port in plan.probes]
        lines += [
            "",
            f"## Probe latency with every worker saturated (GET /health/live every 0.1 s "
            f"for {plan.host_seconds:g} s, each on its own connection; a failed probe counts "
            f"as {host.PROBE_TIMEOUT:g} s)",
            "",
        ]
        lines += table(
            ["load", "port", "probes", "p50 ms", "p99 ms", "max ms", "failed",
             "saturating requests done"],
            [
                (p.load, p.port, p.skipped) + ("",) * 5
                if p.skipped
                else (p.load, p.port, len(p.probes), f"{p.at(0.5):.1f}", f"{p.at(0.99):.1f}",
                      f"{max(p.probes, default=math.nan):.1f}", p.failures, p.work_done)
                for p in probed
            ],
        )  # fmt: skip
        for p in probed:
            if p.port == "probe":
                targets.append(
                    (
                        f"probe p99 on the probe port, {p.load} (< 50 ms)",
                        p.skipped or f"{p.at(0.99):.1f} ms",
                        None if p.skipped else p.at(0.99) < 50,
                    )
                )
    if plan.long:
        lines += long_rows(host.long_run(plan.long), targets)
    return lines


def long_rows(run: host.LongRun, targets: list[tuple[str, str, bool | None]]) -> list[str]:
    lines = [
        "",
        f"## Long run ({run.minutes:g} min of wrk load on /health/ready, gunicorn gthread "
        f"-w {host.LONG_WORKERS}: one worker kept for the whole run, the other recycled "
        f"{run.recycles} times (SIGTERM, as --max-requests stops it), the check's flag "
        f"flipped {run.flips} times; "
        f"{run.rps:,.0f} requests/s, {run.non_2xx:,} non-2xx, {run.errors:,} socket errors)",
        "",
    ]
    lines += table(
        ["minute", "workers", "worker pids sampled", "RSS MiB (kept worker)",
         "threads (kept worker)", "files (kept worker, not sockets)", "sockets (all workers)",
         "arbiter fds", "instance database KiB", "its WAL file KiB"],
        [
            (f"{s.minute:.1f}", s.workers, s.pids_seen,
             f"{s.rss_mib:.1f}" if s.kept_alive else "(died)", s.threads, s.files,
             s.sockets, s.master_fds, f"{s.database_kib:.0f}", f"{s.wal_kib:.0f}")
            for s in run.samples
        ],
    )  # fmt: skip
    growth = run.growth()
    verdict = ", ".join(
        f"{name} {before:.1f} -> {after:.1f} ({'flat' if ok else 'growing'})"
        for name, (before, after, ok) in growth.items()
    )
    lines += ["", f"After the first sample: {verdict or 'too few samples'}."]
    targets.append(
        (
            "memory, threads, fds over the long run (flat after the first sample)",
            "flat" if run.flat else ("growing" if run.flat is False else "too few samples"),
            run.flat,
        )
    )
    return lines


# -- the gRPC rows ---------------------------------------------------------------------------


def grpc_rows(plan: Plan, targets: list[tuple[str, str, bool | None]]) -> list[str]:
    """Check calls/s through our servicers and grpcio-health-checking's, interleaved
    round by round on the same kind of server."""
    runs: dict[tuple[str, str], list[grpccheck.Run]] = {
        (kind, servicer): [] for kind in plan.grpc for servicer in grpccheck.SERVICERS
    }
    for number in range(plan.rounds):
        print(f"gRPC round {number + 1} of {plan.rounds}", file=sys.stderr, flush=True)
        for (kind, servicer), measured in runs.items():
            measured.append(grpccheck.measure(kind, servicer, plan.duration))

    def spread(kind: str, servicer: str, figure: str) -> Spread:
        return Spread.of(getattr(run, figure) for run in runs[kind, servicer])

    lines = [
        "",
        f"## gRPC health Check calls (grpc.aio load from its own process on the other "
        f"core: {grpccheck.CHANNELS} connections, {grpccheck.IN_FLIGHT} calls in flight, "
        f"{max(1, round(plan.duration))} s, median of {plan.rounds} (lowest-highest))",
        "",
        "Server: `python -m tests.apps.grpc_server KIND PORT` pinned to one core; `sync` is "
        "`grpc.server` with 8 threads, `aio` is `grpc.aio.server()`. Ours: "
        "`health_middleware.grpc.HealthServicer` / `AsyncHealthServicer` (one check, "
        "interval 1 s); theirs: grpcio-health-checking's `HealthServicer` / "
        '`aio.HealthServicer` with `""` set SERVING by hand.',
        "",
    ]
    lines += table(
        ["server", "servicer", "Check calls/s", "p50 ms", "p99 ms", "errors",
         "server CPU (1.0 = a core)", "server CPU µs a call", "check runs/s"],
        [
            (kind, servicer, spread(kind, servicer, "calls_per_s").show(),
             spread(kind, servicer, "p50_ms").show(2), spread(kind, servicer, "p99_ms").show(2),
             sum(run.errors for run in runs[kind, servicer]),
             spread(kind, servicer, "server_cpu").show(2),
             spread(kind, servicer, "cpu_us_per_call").show(),
             spread(kind, servicer, "check_runs_per_s").show(2))
            for kind, servicer in runs
        ],
    )  # fmt: skip
    ratios = []
    for kind in plan.grpc:
        ours, theirs = (runs[kind, servicer] for servicer in grpccheck.SERVICERS)
        versus = ratio([r.calls_per_s for r in ours], [r.calls_per_s for r in theirs])
        cost = ratio([r.cpu_us_per_call for r in ours], [r.cpu_us_per_call for r in theirs])
        ratios.append((kind, versus.show(2), cost.show(2)))
        targets.append(
            (
                f"gRPC {kind}: ours ÷ grpcio-health-checking's, Check calls/s (>= 0.9)",
                versus.show(2),
                _at_least(versus, 0.9),
            )
        )
    lines += ["", "## gRPC, ratios (round by round; median (lowest-highest))", ""]
    header = ["server", "ours ÷ grpcio-health-checking's, Check calls/s"]
    lines += table([*header, "ours ÷ theirs, server CPU a call"], ratios)
    return lines


# -- the report ------------------------------------------------------------------------------


def in_process_rows(targets: list[tuple[str, str, bool | None]]) -> list[str]:
    rows = inprocess.run()
    lines = ["## In process", ""]
    lines += table(
        ["what", "cost", "baseline", "ratio", "target", "result"],
        [
            (
                r.what,
                f"{r.value:.1f} {r.unit}",
                "" if r.baseline is None else f"{r.baseline:.1f} {r.unit}",
                "" if r.ratio is None else f"{r.ratio:.2f}x",
                ""
                if r.target is None
                else (f"<= {r.target}x" if r.baseline else f"< {r.target} MiB"),
                _mark(r.met if r.baseline else (r.value < (r.target or 0))),
            )
            for r in rows
        ],
    )
    for r in rows:
        met = r.met if r.baseline else r.value < (r.target or 0)
        targets.append((r.what, f"{r.ratio:.2f}x" if r.ratio else f"{r.value:.2f} {r.unit}", met))
    return lines


def _versions() -> str:
    found = []
    for name in ("uvicorn", "httptools", "uvloop", "gunicorn", "uvicorn-worker", "hypercorn",
                 "granian"):  # fmt: skip
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} missing")
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median kept)")
    parser.add_argument("--in-process-only", action="store_true")
    parser.add_argument("--all-peers", action="store_true", help="every peer on every stack")
    parser.add_argument("--long", type=float, default=0.0, metavar="MINUTES",
                        help="add the long run (memory, threads, fds under load)")  # fmt: skip
    parser.add_argument("--only", help="comma-separated words: run only the rows whose key has one")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: every row's server is stopped and its folder removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
    plan = make_plan(args)
    words = only_words(args)
    if args.only is not None and not words:
        parser.error("--only needs at least one word")
    if "long" in words and not args.long:
        parser.error("the long run needs --long MINUTES")
    if not (plan.in_process or plan.scenarios or plan.runs or plan.agree or plan.probes
            or plan.grpc or plan.long):  # fmt: skip
        parser.error(f"--only {args.only!r} selects no row")
    print(
        f"estimated time: about {plan.estimate() / 60:.0f} min "
        f"({len(plan.scenarios)} end-to-end scenarios x {plan.rounds} rounds, "
        f"{len(plan.runs) + len(plan.agree) + len(plan.probes)} host rows, "
        f"{len(plan.grpc)} gRPC rows"
        + (f", a {plan.long:g} min long run" if plan.long else "")
        + ")",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()

    targets: list[tuple[str, str, bool | None]] = []
    lines = in_process_rows(targets) if plan.in_process else []
    if plan.scenarios:
        lines += end_to_end(plan, interleaved(plan), targets)
    lines += host_rows(plan, targets)
    if plan.grpc:
        lines += grpc_rows(plan, targets)
    lines += ["", "## Targets", ""]
    lines += table(["target", "measured", "result"], [(w, m, _mark(ok)) for w, m, ok in targets])
    print("\n".join(lines))
    if args.only:
        print(f"\n(--only: {RESULTS.name} and {PAGE.name} left as they were)", file=sys.stderr)
        return 0
    write(lines, command, time.monotonic() - started, full=not args.in_process_only)
    return 0


def write(lines: list[str], command: str, took: float, full: bool) -> None:
    """RESULTS.md (keeping its notes) and, after a full run, the benchmarks page's tables."""
    machine = (
        f"{platform.node()}: {_cpu()}, {len(os.sched_getaffinity(0))} cores"
        f"; Python {platform.python_version()}; {platform.platform()}"
    )
    try:
        wrk = (
            subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
            .stdout.splitlines()[0]
            .split(" [")[0]
        )
    except (OSError, IndexError):
        wrk = "wrk not used"
    header = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine}; {wrk}; {_versions()}.",
        f"Command: `{command.strip()}` (took {took:.0f} s).",
        "",
    ]
    notes = (
        RESULTS.read_text().split("<!-- notes -->", 1)[1]
        if RESULTS.exists() and ("<!-- notes -->" in RESULTS.read_text())
        else "\n"
    )
    RESULTS.write_text("\n".join(header + lines) + "\n\n<!-- notes -->" + notes)
    page = PAGE.read_text() if PAGE.exists() else ""
    if START in page and END in page and full:
        before, rest = page.split(START, 1)
        after = rest.split(END, 1)[1]
        shown = [f"Measured on {machine}, `{command.strip()}` ({_versions()}):", ""]
        shown += lines[lines.index(next(x for x in lines if x.startswith("## End to end"))) :]
        shown = [x.replace("## ", "### ", 1) if x.startswith("## ") else x for x in shown]
        PAGE.write_text(before + START + "\n" + "\n".join(shown) + "\n" + END + after)


if __name__ == "__main__":
    sys.exit(main())
