"""Run every benchmark scenario, print one table, write benchmarks/RESULTS.md (and the
tables between the benchmark markers of README.md).

    python -m benchmarks.run [--duration 5] [--rounds 3] [--in-process-only]

Speed is given as ratios against a baseline measured in the same run, so the
results carry over to another machine; each target is printed as met or not.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import endtoend, inprocess

RESULTS = Path(__file__).with_name("RESULTS.md")
README = Path(__file__).parent.parent / "README.md"
START, END = "<!-- benchmark-table -->", "<!-- /benchmark-table -->"


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


def median_loads(rounds: int, duration: float) -> list[endtoend.Load]:
    """Each scenario ``rounds`` times, interleaved, keeping the median throughput."""
    runs: dict[tuple[str, str, bool], list[endtoend.Load]] = {}
    plan = [(s, a, p, False) for s, a, p in endtoend.SCENARIOS]
    plan += [(s, a, p, True) for s, a, p in endtoend.HUNG]
    for _ in range(rounds):
        for server, app, path, hung in plan:
            load = endtoend.measure(server, app, path, duration, hung)
            runs.setdefault((server, app, hung), []).append(load)
    result = []
    for loads in runs.values():
        loads.sort(key=lambda load: load.rps)
        result.append(loads[len(loads) // 2])
    return result


def table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median kept)")
    parser.add_argument("--in-process-only", action="store_true")
    args = parser.parse_args(argv)
    command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.monotonic()

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
    targets: list[tuple[str, str, bool | None]] = []
    for r in rows:
        met = r.met if r.baseline else r.value < (r.target or 0)
        targets.append((r.what, f"{r.ratio:.2f}x" if r.ratio else f"{r.value:.2f} {r.unit}", met))

    if not args.in_process_only:
        loads = median_loads(args.rounds, args.duration)
        by = {(load.app, load.hung): load for load in loads}
        lines += [
            "",
            f"## End to end (wrk, {endtoend.CONNECTIONS} connections, "
            f"{args.duration:g} s, median of {args.rounds})",
            "",
        ]
        lines += table(
            [
                "server",
                "app",
                "hung dependency",
                "requests/s",
                "p50 ms",
                "p99 ms",
                "errors",
                "non-2xx",
                "check runs/s",
            ],
            [
                (
                    x.server,
                    x.app,
                    "yes" if x.hung else "",
                    f"{x.rps:.0f}",
                    f"{x.p50_ms:.2f}",
                    f"{x.p99_ms:.2f}",
                    x.errors,
                    x.non_2xx,
                    f"{x.check_runs_per_s:.1f}",
                )
                for x in loads
            ],
        )
        for ours, bare in (("ours_asgi", "bare_asgi"), ("ours_wsgi", "bare_wsgi")):
            ratio = by[(ours, False)].rps / max(by[(bare, False)].rps, 1e-9)
            targets.append(
                (f"{ours} throughput vs {bare} (>= 0.95x)", f"{ratio:.2f}x", ratio >= 0.95)
            )
        p99 = by[("ours_asgi", False)].p99_ms
        targets.append(("ours_asgi p99 at 16 connections (< 1 ms)", f"{p99:.2f} ms", p99 < 1.0))
        for ours, peer in (("ours_asgi", "fastapi_health"), ("ours_wsgi", "flask_healthcheck")):
            ratio = by[(ours, False)].rps / max(by[(peer, False)].rps, 1e-9)
            targets.append((f"{ours} vs {peer} throughput (>= 5x)", f"{ratio:.1f}x", ratio >= 5))
        for ours in ("ours_asgi", "ours_wsgi"):
            ratio = by[(ours, True)].p99_ms / max(by[(ours, False)].p99_ms, 1e-9)
            targets.append(
                (
                    f"{ours} p99 with a hung check vs without (<= 1.1x)",
                    f"{ratio:.2f}x",
                    ratio <= 1.1,
                )
            )
            runs = by[(ours, False)].check_runs_per_s
            targets.append(
                (
                    f"{ours} check runs/s under a probe flood (= 1 check / 1 s)",
                    f"{runs:.2f}/s at {by[(ours, False)].rps:.0f} probes/s",
                    0.5 <= runs <= 1.5,
                )
            )

    lines += ["", "## Targets", ""]
    lines += table(["target", "measured", "result"], [(w, m, _mark(ok)) for w, m, ok in targets])
    print("\n".join(lines))

    machine = (
        f"{platform.node()}: {_cpu()}, {len(__import__('os').sched_getaffinity(0))} cores"
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
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine}; {wrk}.",
        f"Command: `{command.strip()}` (took {time.monotonic() - started:.0f} s).",
        "",
    ]
    notes = (
        RESULTS.read_text().split("<!-- notes -->", 1)[1]
        if RESULTS.exists() and ("<!-- notes -->" in RESULTS.read_text())
        else "\n"
    )
    RESULTS.write_text("\n".join(header + lines) + "\n\n<!-- notes -->" + notes)
    readme = README.read_text() if README.exists() else ""
    if START in readme and END in readme and not args.in_process_only:
        before, rest = readme.split(START, 1)
        after = rest.split(END, 1)[1]
        shown = [f"Measured on {machine}, `{command.strip()}`:", ""]
        shown += lines[lines.index(next(x for x in lines if x.startswith("## End to end"))) :]
        shown = [x.replace("## ", "#### ") for x in shown]
        README.write_text(before + START + "\n" + "\n".join(shown) + "\n" + END + after)
    return 0


if __name__ == "__main__":
    sys.exit(main())
