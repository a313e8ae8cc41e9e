"""Registers `optimum-cli dpruner` (read by `optimum.commands.optimum_cli.load_optimum_namespace_cli_commands`).

This file is imported at every `optimum-cli` start, whatever the command: it must stay light and must not raise.
`optimum_dpruner.cli` imports only the standard library and `optimum.commands.base`; should it fail anyway (a
broken install), the dpruner command is left out with a one-line warning instead of breaking every command.

optimum reads `REGISTER_COMMANDS` once per folder of the `optimum.commands.register` namespace that holds this
file. With two copies on the path (a checkout on PYTHONPATH over an installed or editable one) it would register
`dpruner` twice and every `optimum-cli` call would die with "conflicting subparser: dpruner"; so the list is handed
out on the first read only (module `__getattr__`), and later reads get an empty list.
"""

import sys

from optimum.commands.base import BaseOptimumCLICommand

_COMMANDS: list[type[BaseOptimumCLICommand]] = []
_read = False


def __getattr__(name: str):
    global _read
    if name == "REGISTER_COMMANDS":
        first, _read = not _read, True
        return _COMMANDS if first else []
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


try:
    from optimum_dpruner.cli import DPrunerCommand
except Exception as e:  # noqa: BLE001 - anything here would break `optimum-cli env`, `export`...
    sys.stderr.write(
        f"warning: 'optimum-cli dpruner' is unavailable ({type(e).__name__}: {e}); "
        "reinstall it with 'pip install --force-reinstall optimum-dpruner'.\n"
    )
else:
    _COMMANDS.append(DPrunerCommand)
