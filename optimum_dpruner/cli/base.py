"""The base of the `optimum-cli dpruner` commands: parser set-up, and `run()`, which turns what `execute()` raises
into an exit code and one line on stderr (see `exits` for the codes).

Imports only the standard library and `optimum.commands.base`: it runs at every `optimum-cli` start.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from typing import NoReturn

from optimum.commands.base import BaseOptimumCLICommand

from .exits import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, RunFailure, UsageError, fail, flagify, one_line
from .interrupts import Interrupts
from .output import one_line_warning
from .parsing import configure_parser

__all__ = ["DPrunerCLICommand"]


class DPrunerCLICommand(BaseOptimumCLICommand):
    """Base of the `optimum-cli dpruner` commands.

    Subclasses set `DESCRIPTION` and `EXAMPLES` (shown by `--help`), add their flags in `parse_args`, and do the
    work in `execute()`. `run()` turns exceptions into one-line errors and exit codes (see `exits`).
    """

    DESCRIPTION: str = ""
    EXAMPLES: str = ""
    #: library argument names (as they appear in error messages) -> the flag that sets them
    FLAG_NAMES: dict[str, str] = {}

    def __init__(self, subparsers, args=None, command=None, from_defaults_factory: bool = False, parser=None):
        super().__init__(subparsers, args=args, command=command, from_defaults_factory=from_defaults_factory, parser=parser)
        if not from_defaults_factory:
            configure_parser(self.parser, self.DESCRIPTION or self.COMMAND.help, self.EXAMPLES)

    @staticmethod
    def add_common_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--traceback", action="store_true", help="Print the full traceback of an error.")

    def execute(self) -> int | None:
        """Do the work; return an exit code (`None` means 0)."""
        self.parser.print_help()
        return EXIT_OK

    def _fail_with(self, error: BaseException, prog: str, show_traceback: bool) -> NoReturn:
        """Exit with the code and the one-line message of `error` (see `exits`)."""
        from ..errors import ConfigError, DPrunerError

        if isinstance(error, UsageError):
            fail(prog, str(error), EXIT_USAGE)
        if isinstance(error, ConfigError):  # an option's value (from a flag or --config) is invalid
            fail(prog, flagify(str(error), self.FLAG_NAMES), EXIT_USAGE)
        if show_traceback:
            traceback.print_exception(error)
        if isinstance(error, (RunFailure, DPrunerError)):
            fail(prog, flagify(str(error), self.FLAG_NAMES), EXIT_FAILURE)
        if not isinstance(error, Exception):
            raise error  # neither an error nor an interrupt (e.g. GeneratorExit): not ours to handle
        hint = "" if show_traceback else " (rerun with --traceback for details)"
        fail(prog, f"{type(error).__name__}: {one_line(error)}{hint}", EXIT_FAILURE)

    def run(self) -> None:
        prog = self.parser.prog
        show_traceback = getattr(self.args, "traceback", False)
        warnings.formatwarning = one_line_warning
        interrupts = Interrupts(prog)
        try:
            with interrupts:
                code = self.execute()
                if interrupts.count:  # interrupted, but something swallowed the KeyboardInterrupt
                    raise KeyboardInterrupt
        except SystemExit:
            raise
        except BaseException as e:
            if interrupts.count or isinstance(e, KeyboardInterrupt):  # also when a library re-raised it as another type
                fail(prog, "interrupted.", EXIT_INTERRUPTED)
            self._fail_with(e, prog, show_traceback)
        sys.exit(code or EXIT_OK)
