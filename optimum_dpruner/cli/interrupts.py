"""SIGINT while a command runs: counted by a signal handler so that `DPrunerCLICommand.run` exits 130 even when a
library swallowed the `KeyboardInterrupt`."""

from __future__ import annotations

import os
import signal
import sys
import threading

from .exits import EXIT_INTERRUPTED

__all__ = ["Interrupts"]


class Interrupts:
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

    def __enter__(self) -> "Interrupts":
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
        os._exit(EXIT_INTERRUPTED)

    def __exit__(self, *exc) -> None:
        if self._active:
            signal.signal(signal.SIGINT, self._exit_now)
            sys.unraisablehook = self._previous_hook
