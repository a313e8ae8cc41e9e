"""argparse made to answer as the other errors do: one line naming the command, exit code 2, no usage block.

argparse prints the usage block before its error and lets the top-level `optimum-cli` parser report unknown flags;
`configure_parser` turns both into one line, e.g.
`optimum-cli dpruner prune: error: argument --sparsity: '1,5' is not a number, e.g. 0.5 (see ... --help)`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

from .exits import EXIT_USAGE, fail

__all__ = ["configure_parser"]


def configure_parser(parser: argparse.ArgumentParser, description: str, examples: str = "") -> None:
    """Give `parser` a description, an examples epilog, and one-line usage errors with exit code 2."""
    parser.description = description
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    if examples:
        parser.epilog = "examples:\n" + examples.strip("\n")
    prog = parser.prog

    def error(message: str) -> NoReturn:
        fail(prog, f"{message} (see '{prog} --help').", EXIT_USAGE)

    parse_known_args = parser.parse_known_args

    def strict_parse_known_args(args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None):
        namespace, extras = parse_known_args(args, namespace)
        if extras:
            error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    parser.error = error  # type: ignore[method-assign]
    parser.parse_known_args = strict_parse_known_args  # type: ignore[method-assign]
