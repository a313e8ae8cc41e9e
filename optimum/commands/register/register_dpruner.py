"""Registers `optimum-cli dpruner` (read by `optimum.commands.optimum_cli.load_optimum_namespace_cli_commands`).

This file is imported at every `optimum-cli` start, whatever the command: it must stay light and must not raise.
`optimum_dpruner.cli` imports only the standard library and `optimum.commands.base`; should it fail anyway (a
broken install), the dpruner command is left out with a one-line warning instead of breaking every command.
"""

import sys

from optimum.commands.base import BaseOptimumCLICommand

REGISTER_COMMANDS: list[type[BaseOptimumCLICommand]] = []

try:
    from optimum_dpruner.cli import DPrunerCommand
except Exception as e:  # noqa: BLE001 - anything here would break `optimum-cli env`, `export`...
    sys.stderr.write(
        f"warning: 'optimum-cli dpruner' is unavailable ({type(e).__name__}: {e}); "
        "reinstall it with 'pip install --force-reinstall optimum-dpruner'.\n"
    )
else:
    REGISTER_COMMANDS.append(DPrunerCommand)
