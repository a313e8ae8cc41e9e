"""Exit codes and one-line errors of the `optimum-cli dpruner` commands.

Exit codes: 0 success, 2 usage error (the command line is wrong: bad or conflicting flags, a missing input folder,
an existing output folder; detected before any work starts), 1 failure (the run itself failed: a model, data set
or Hub request could not be used), 130 interrupted. Every error is one line on stderr, `<prog>: error: <what> <fix>`.
Standard library only (imported at every `optimum-cli` start).
"""

from __future__ import annotations

import re
import sys
from typing import Any, NoReturn

__all__ = ["EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_INTERRUPTED", "UsageError", "RunFailure", "one_line", "fail",
           "flagify"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """The command line is wrong (exit code 2). The message names the argument and the fix."""


class RunFailure(Exception):
    """The run failed for a reason the user can act on (exit code 1). The message names the argument and the fix."""


def one_line(text: Any) -> str:
    """`text` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def fail(prog: str, message: str, code: int) -> NoReturn:
    """Write `<prog>: error: <message>` as one line on stderr and exit with `code`."""
    sys.stderr.write(f"{prog}: error: {one_line(message)}\n")
    sys.exit(code)


# a quoted value after `=` and a URL are kept as they are: `seed=` inside 'https://host/x?seed=3' is no field
_FIELD_RE = re.compile(r"""\b\w+://\S+|\b(?P<name>[a-z_]+)=(?P<value>'[^']*'|"[^"]*")?""")


def flagify(message: str, flags: dict[str, str]) -> str:
    """Rewrite `name=` in a library message as the CLI flag (`sparsity=` -> `--sparsity=`) where `name` has one."""
    def rewrite(match: re.Match) -> str:
        name = match.group("name")
        return f"{flags[name]}={match.group('value') or ''}" if name in flags else match.group(0)

    return _FIELD_RE.sub(rewrite, message)
