"""Shared machinery of the `optimum-cli dpruner` commands: parsers, exit codes, one-line errors, tables.

Exit codes: 0 success, 2 usage error (the command line is wrong: bad or conflicting flags, a missing input folder,
an existing output folder; detected before any work starts), 1 failure (the run itself failed: a model, data set
or Hub request could not be used). Every error is one line on stderr, `<prog>: error: <what> <fix>`.

This module imports only the standard library and `optimum.commands.base`: it runs at every `optimum-cli` start.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from optimum.commands.base import BaseOptimumCLICommand

from ..tables import format_pairs, format_table

__all__ = [
    "EXIT_OK",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "UsageError",
    "RunFailure",
    "DPrunerCLICommand",
    "configure_parser",
    "add_model_loading_arguments",
    "add_hub_arguments",
    "require_folder",
    "one_line",
    "format_table",
    "format_pairs",
    "status",
    "disable_progress_bars",
    "push_folder",
    "flagify",
    "DTYPE_CHOICES",
]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

#: Values of `--dtype`; `modeling.resolve_dtype` accepts these (and aliases).
DTYPE_CHOICES = ("auto", "float32", "float16", "bfloat16")


class UsageError(Exception):
    """The command line is wrong (exit code 2). The message names the argument and the fix."""


class RunFailure(Exception):
    """The run failed for a reason the user can act on (exit code 1). The message names the argument and the fix."""


def one_line(text: Any) -> str:
    """`text` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def _fail(prog: str, message: str, code: int) -> NoReturn:
    sys.stderr.write(f"{prog}: error: {one_line(message)}\n")
    sys.exit(code)


def configure_parser(parser: argparse.ArgumentParser, description: str, examples: str = "") -> None:
    """Give `parser` a description, an examples epilog, and one-line usage errors with exit code 2.

    argparse prints the usage block before its error and lets the top-level `optimum-cli` parser report unknown
    flags; here both become one line naming this command, e.g.
    `optimum-cli dpruner prune: error: argument --sparsity: '1,5' is not a number, e.g. 0.5 (see ... --help)`.
    """
    parser.description = description
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    if examples:
        parser.epilog = "examples:\n" + examples.strip("\n")
    prog = parser.prog

    def error(message: str) -> NoReturn:
        _fail(prog, f"{message} (see '{prog} --help').", EXIT_USAGE)

    parse_known_args = parser.parse_known_args

    def strict_parse_known_args(args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None):
        namespace, extras = parse_known_args(args, namespace)
        if extras:
            error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    parser.error = error  # type: ignore[method-assign]
    parser.parse_known_args = strict_parse_known_args  # type: ignore[method-assign]


def add_model_loading_arguments(parser: argparse.ArgumentParser) -> None:
    """`--device` and `--dtype`, shared by the commands that load a model."""
    group = parser.add_argument_group("model loading")
    group.add_argument("--device", default=None, help="Device to run on, e.g. 'cpu', 'cuda', 'cuda:1' (default: cpu).")
    group.add_argument(
        "--dtype", default=None, choices=DTYPE_CHOICES, help="Dtype to load the weights in (default: the checkpoint's)."
    )


def add_hub_arguments(parser: argparse.ArgumentParser, title: str = "Hugging Face Hub") -> None:
    """Options of a push to the Hub, shared by `prune --push-to-hub` and `push`."""
    group = parser.add_argument_group(title)
    group.add_argument("--private", action="store_true", default=None, help="Create the repository as private.")
    group.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the token saved by `hf auth login`).")
    group.add_argument("--revision", default=None, help="Branch to push to (default: main).")
    group.add_argument("--create-pr", action="store_true", help="Open a pull request instead of committing to the branch.")
    group.add_argument("--commit-message", default=None, help="Commit message (default: one naming the method and sparsity).")


def push_folder(args: argparse.Namespace, folder: str, repo_id: str) -> str:
    """Push `folder` to `repo_id` with the options of `add_hub_arguments`; returns the commit URL."""
    from ..checkpoint.hub import push_to_hub

    return push_to_hub(
        folder,
        repo_id,
        private=args.private,
        token=args.token,
        revision=args.revision,
        create_pr=args.create_pr,
        commit_message=args.commit_message,
    )


def require_folder(flag: str, path: str, must_contain: str | None = "config.json") -> str:
    """The absolute path of `path`; `UsageError` unless it is a folder (holding `must_contain`)."""
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(full):
        raise UsageError(f"{flag} {path!r} is not a folder; pass the folder written by 'optimum-cli dpruner prune'.")
    if must_contain and not os.path.isfile(os.path.join(full, must_contain)):
        raise UsageError(f"{flag} {path!r} holds no {must_contain}; pass the folder written by 'optimum-cli dpruner prune'.")
    return full


def disable_progress_bars() -> None:
    """Silence the progress bars of transformers and huggingface_hub too (for `--no-progress`)."""
    from huggingface_hub.utils import disable_progress_bars as disable_hub_bars
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    disable_hub_bars()


def status(message: str) -> None:
    """A progress message on stderr (stdout carries the results)."""
    sys.stderr.write(f"[dpruner] {message}\n")
    sys.stderr.flush()


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"{category.__name__}: {one_line(message)}\n"


_FIELD_RE = re.compile(r"\b([a-z_]+)=")


def flagify(message: str, flags: dict[str, str]) -> str:
    """Rewrite `name=` in a library message as the CLI flag (`sparsity=` -> `--sparsity=`) where `name` has one."""
    return _FIELD_RE.sub(lambda m: f"{flags[m.group(1)]}=" if m.group(1) in flags else m.group(0), message)


class _Interrupts:
    """Ctrl-C during a command: exit 130 with one line, whoever catches the `KeyboardInterrupt` on the way.

    A library may swallow the `KeyboardInterrupt` (a `__del__`, a callback, an `except BaseException` that does
    not re-raise), which would let the command go on and exit 0, and Python prints an "Exception ignored" traceback
    for the ones raised where nothing can catch them. The handler counts every interrupt, the unraisable hook hides
    those tracebacks, and `run()` turns any counted interrupt into exit 130. Once `run()` has its exit code, a late
    Ctrl-C (during interpreter shutdown) exits 130 at once, without a traceback.
    """

    def __init__(self, prog: str) -> None:
        self.prog = prog
        self.count = 0

    def __enter__(self) -> "_Interrupts":
        self._active = threading.current_thread() is threading.main_thread()
        if self._active:
            self._previous_handler = signal.signal(signal.SIGINT, self._raise)
            self._previous_hook = sys.unraisablehook
            sys.unraisablehook = self._unraisable
        return self

    def _raise(self, signum, frame) -> None:
        self.count += 1
        raise KeyboardInterrupt

    def _unraisable(self, info) -> None:
        if not isinstance(info.exc_value, KeyboardInterrupt):
            self._previous_hook(info)

    def _exit_now(self, signum, frame) -> None:
        sys.stderr.write(f"{self.prog}: error: interrupted.\n")
        sys.stderr.flush()
        os._exit(130)

    def __exit__(self, *exc) -> None:
        if self._active:
            signal.signal(signal.SIGINT, self._exit_now)
            sys.unraisablehook = self._previous_hook


class DPrunerCLICommand(BaseOptimumCLICommand):
    """Base of the `optimum-cli dpruner` commands.

    Subclasses set `DESCRIPTION` and `EXAMPLES` (shown by `--help`), add their flags in `parse_args`, and do the
    work in `execute()`. `run()` turns exceptions into one-line errors and exit codes (see the module docstring).
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
        """Exit with the code and the one-line message of `error` (see the module docstring)."""
        from ..errors import ConfigError, DPrunerError

        if isinstance(error, UsageError):
            _fail(prog, str(error), EXIT_USAGE)
        if isinstance(error, ConfigError):  # an option's value (from a flag or --config) is invalid
            _fail(prog, flagify(str(error), self.FLAG_NAMES), EXIT_USAGE)
        if show_traceback:
            traceback.print_exception(error)
        if isinstance(error, (RunFailure, DPrunerError)):
            _fail(prog, flagify(str(error), self.FLAG_NAMES), EXIT_FAILURE)
        if not isinstance(error, Exception):
            raise error  # neither an error nor an interrupt (e.g. GeneratorExit): not ours to handle
        hint = "" if show_traceback else " (rerun with --traceback for details)"
        _fail(prog, f"{type(error).__name__}: {one_line(error)}{hint}", EXIT_FAILURE)

    def run(self) -> None:
        prog = self.parser.prog
        show_traceback = getattr(self.args, "traceback", False)
        warnings.formatwarning = _one_line_warning
        interrupts = _Interrupts(prog)
        try:
            with interrupts:
                code = self.execute()
                if interrupts.count:  # interrupted, but something swallowed the KeyboardInterrupt
                    raise KeyboardInterrupt
        except SystemExit:
            raise
        except BaseException as e:
            if interrupts.count or isinstance(e, KeyboardInterrupt):  # also when a library re-raised it as another type
                _fail(prog, "interrupted.", 130)
            self._fail_with(e, prog, show_traceback)
        sys.exit(code or EXIT_OK)
