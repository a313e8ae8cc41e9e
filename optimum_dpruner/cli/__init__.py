"""`optimum-cli dpruner`: prune, recover, evaluate, inspect and push from the shell.

Registered with optimum-cli by `optimum/commands/register/register_dpruner.py`. Importing this package loads only
the standard library, `optimum.commands.base` and the standard-library-only modules `optimum_dpruner.configuration`,
`.tables` and `.models.hub_ids`: torch, transformers and the pruning code are imported inside each command's
`run()`, so that `optimum-cli --help` stays fast and a broken heavy dependency cannot break the other optimum-cli
commands.

- `base`: `DPrunerCLICommand`, whose `run()` turns errors into exit codes; `exits`: the codes and one-line errors;
- `parsing`: argparse set up for one-line usage errors; `arguments`: flags shared by several commands;
- `flags`: one flag per `DPrunerConfig` field; `output`: progress and warnings on stderr; `interrupts`: Ctrl-C;
- `prune`, `evaluate`, `checkpoint` (`inspect`, `push`): the commands.
"""

from optimum.commands.base import CommandInfo

from .base import DPrunerCLICommand
from .checkpoint import InspectCommand, PushCommand
from .exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from .evaluate import EvaluateCommand
from .prune import PruneCommand
from .recover import RecoverCommand

__all__ = [
    "DPrunerCommand",
    "PruneCommand",
    "EvaluateCommand",
    "InspectCommand",
    "PushCommand",
    "RecoverCommand",
    "EXIT_OK",
    "EXIT_FAILURE",
    "EXIT_USAGE",
]


class DPrunerCommand(DPrunerCLICommand):
    """The `optimum-cli dpruner` group; without a subcommand it prints its help."""

    COMMAND = CommandInfo(name="dpruner", help="Prune LLMs with D-Pruner (or SparseGPT, Wanda, magnitude) and use them.")
    DESCRIPTION = (
        "Extract a smaller, domain-specific LLM by pruning (D-Pruner, SparseGPT, Wanda, magnitude), then evaluate,\n"
        "inspect and push it. Without -m (or with -m default), prune and evaluate use the embedded\n"
        "SmolLM2-135M-Instruct, so nothing is downloaded. Exit codes: 0 success, 1 failure, 2 usage error,\n"
        "130 interrupted (Ctrl-C)."
    )
    EXAMPLES = """
  optimum-cli dpruner prune --domain-dataset builtin:medical -o out
  optimum-cli dpruner recover -m out --domain-dataset builtin:medical -o out-recovered
  optimum-cli dpruner evaluate -m out --dataset builtin:medical builtin:general
  optimum-cli dpruner inspect out
  optimum-cli dpruner push out me/smollm2-medical-50

Run 'optimum-cli dpruner <command> --help' for the options of a command.
"""
    SUBCOMMANDS = (
        CommandInfo("prune", help="Prune a model and save it (optionally push it).", subcommand_class=PruneCommand),
        CommandInfo("evaluate", help="Perplexity on data sets and zero-shot tasks (pubmedqa, casehold, billsum, "
                                     "pubmed_title, billsum_title, wiki_next, billsum_next), with 95%% intervals.",
                    subcommand_class=EvaluateCommand),
        CommandInfo("inspect", help="Sparsity table and metadata check of a pruned folder or Hub model.",
                    subcommand_class=InspectCommand),
        CommandInfo("push", help="Push a pruned folder to the Hugging Face Hub.", subcommand_class=PushCommand),
        CommandInfo("recover", help="Fine-tune a pruned model, keeping every pruned zero.", subcommand_class=RecoverCommand),
    )
