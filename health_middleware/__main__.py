"""Command line: ``health-middleware probe URL``, ``health-middleware check
MODULE:ATTR`` and ``health-middleware demo``."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


class _Parser(argparse.ArgumentParser):
    """Exits 1 on a usage error, not argparse's 2: Docker reserves exit code 2 for
    HEALTHCHECK, and to a probe any failure is the same failure."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(
        prog="health-middleware", description="Health endpoints for ASGI and WSGI apps."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    probe = commands.add_parser(
        "probe", help="GET a URL; exit 0 on 2xx/3xx, 1 otherwise (a Docker HEALTHCHECK)"
    )
    probe.add_argument("url")
    probe.add_argument("--timeout", type=_positive, default=5.0, help="seconds (default 5)")
    check = commands.add_parser(
        "check",
        help="run every check of a Health once, now, and print them; exit 0 on pass or "
        "warn, 1 on fail (a deploy gate)",
    )
    check.add_argument("health", metavar="MODULE:ATTR", help="the Health, e.g. proj.health:health")
    check.add_argument("--json", action="store_true", help="print the full IETF report")
    check.add_argument(
        "--errors", action="store_true", help="show each failure's message, not only its kind"
    )
    demo = commands.add_parser("demo", help="serve a demo app with real checks on 127.0.0.1")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=_port, default=8000)
    args = parser.parse_args(argv)
    if args.command == "probe":
        from health_middleware.cli.probe import run

        try:
            return run(args.url, args.timeout)
        except ValueError as exc:
            parser.error(str(exc))
    if args.command == "check":
        return _check(parser, args.health, args.json, args.errors)
    from health_middleware.cli.demo import serve

    return serve(args.host, args.port)


def _check(parser: _Parser, target: str, as_json: bool, errors: bool) -> int:
    from health_middleware.cli import command
    from health_middleware.config.imports import import_string
    from health_middleware.health import Health

    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # the console script finds the project's modules, as -m does
    try:
        health = import_string(target, "health")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return command.INTERRUPTED
    except (ImportError, AttributeError, ValueError) as exc:
        parser.error(str(exc))
    if not isinstance(health, Health):
        parser.error(f"{target!r} is a {type(health).__name__}, not a Health")
    return command.run(health, as_json=as_json, errors=errors)


if __name__ == "__main__":
    sys.exit(main())
