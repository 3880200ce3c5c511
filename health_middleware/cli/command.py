"""The ``check`` command (``health-middleware check`` and Django's ``manage.py
health``): run every check of a ``Health`` once, now, and print a table or the IETF
report; the exit code says whether the whole fails. With ``errors`` each failure's
message is printed, not only its kind (the command runs with the privileges of the
person who runs it, who may read what the checks' errors say)."""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import TextIO

from health_middleware.formats import Ietf
from health_middleware.health import Health
from health_middleware.model.report import Report, Service

INTERRUPTED = 130  # a shell's code for a command stopped by SIGINT


# C0 and C1 controls, and the invisible format characters that reorder or hide text
# (bidirectional overrides and isolates, zero-width characters): shown as escapes.
_FORMAT = (*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070), 0xFEFF)
_CONTROL = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in (*range(0x20), 0x7F, *range(0x80, 0xA0), *_FORMAT)
}


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (escape sequences, carriage
    returns, newlines) and invisible format characters (bidirectional overrides)
    shown as ``\\xNN`` / ``\\uNNNN`` instead of acting on the screen."""
    return text.translate(_CONTROL)


def table(report: Report, service: Service) -> str:
    """One line per check (name, status, time taken, output), then the whole."""
    rows = [("CHECK", "STATUS", "TIME", "OUTPUT")]
    for counted in report.checks:
        outcome = counted.outcome
        rows.append(
            (
                printable(counted.name),
                counted.status,
                f"{outcome.duration * 1000:.1f} ms",
                printable(counted.output(service) or ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[3]]
        ).rstrip()
        for row in rows
    ]
    whole = f"{report.status}: {printable(report.output)}" if report.output else report.status
    lines.append(f"\n{whole} ({len(report.checks)} checks)")
    return "\n".join(lines) + "\n"


def run(
    health: Health, *, as_json: bool = False, errors: bool = False, out: TextIO | None = None
) -> int:
    """Run every check once and print the result (with ``errors``, each failure's
    message rather than its kind): exit code 0 when the whole passes or warns, 1 when
    it fails, 130 when interrupted (Ctrl-C)."""
    out = sys.stdout if out is None else out
    try:
        report = health.run_once()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    code = 1 if report.status == "fail" else 0
    service = health.registry.service
    if errors:
        service = dataclasses.replace(service, expose_errors=True)
    try:
        if as_json:
            out.write(Ietf().render(report, service, time.time()).body.decode() + "\n")
        else:
            out.write(table(report, service))
        out.flush()
    except BrokenPipeError:
        # The reader went away (``| head``): the exit code still says what was found.
        # Python's advice: point stdout at devnull so its flush at exit cannot fail.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code
