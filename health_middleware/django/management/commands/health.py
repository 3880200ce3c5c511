"""``manage.py health``: run every check once, now, and print a table (``--json``:
the IETF report; ``--errors``: each failure's message, not only its kind). Exit 0
when the whole passes or warns, 1 when it fails or on a usage error (Docker reserves
2), 130 when interrupted."""

from __future__ import annotations

import sys
from typing import Any, ClassVar, NoReturn

from django.core.management.base import BaseCommand, CommandParser

from health_middleware.cli import command
from health_middleware.django.config import get_health


class Command(BaseCommand):
    help = "Run every health check once, now, and print them; exit 1 when the whole fails."
    requires_system_checks: ClassVar[list[str]] = []  # a deploy gate runs before the rest

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        error = parser.error

        def usage_error(message: str) -> NoReturn:
            if parser.called_from_command_line:
                parser.print_usage(sys.stderr)
                parser.exit(1, f"{parser.prog}: error: {message}\n")
            error(message)  # raises CommandError, as for call_command
            raise AssertionError("unreachable")

        parser.error = usage_error
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the full IETF report")
        parser.add_argument(
            "--errors", action="store_true", help="show each failure's message, not only its kind"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        code = command.run(
            get_health(), as_json=options["json"], errors=options["errors"], out=self.stdout
        )
        if code:
            sys.exit(code)
