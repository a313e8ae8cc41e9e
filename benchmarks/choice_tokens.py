"""Does splitting context + choice as lm-evaluation-harness does change any item SmolLM2 is scored on?

`choice_logprobs` scores each choice on the tokens it gets after the context in the encoding of the whole text
(`optimum_dpruner.evaluation.choice.pair_ids`; the context's trailing whitespace moves to the choice). Before, the
context and the choice were encoded apart. For every item of every multiple-choice task on its bundled test data,
this counts the items where the two give different context or choice tokens with the default model's tokenizer
(no model forward: seconds of CPU).

    python benchmarks/choice_tokens.py --out benchmarks/results/choice_tokens.json
"""

from __future__ import annotations

import argparse
import sys

from common import command_line, write_result

from optimum_dpruner.models.default_model import default_model_path
from optimum_dpruner.evaluation.choice import pair_ids
from optimum_dpruner.evaluation.matching import ITEM_BUILDERS
from optimum_dpruner.evaluation.records import load_task_records
from optimum_dpruner.evaluation.tasks import casehold_items, pubmedqa_items
from optimum_dpruner.models.loading import load_tokenizer

BUILDERS = {"pubmedqa": pubmedqa_items, "casehold": casehold_items, **ITEM_BUILDERS}


def _markdown(record: dict) -> str:
    lines = [f"Command: `{record['command']}`", "", f"Tokenizer: {record['tokenizer']}", "",
             "| task | items | choices | items whose tokens differ (joint split vs apart) |", "|---|---|---|---|"]
    lines += [f"| {t} | {r['items']} | {r['choices']} | {r['items_differ']} |" for t, r in record["tasks"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/choice_tokens.json")
    args = parser.parse_args()
    tokenizer = load_tokenizer(default_model_path())

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    tasks = {}
    for task, build in BUILDERS.items():
        items = build(load_task_records(task))
        differ = sum(any(pair_ids(tokenizer, item.context, c) != (ids(item.context), ids(c)) for c in item.choices)
                     for item in items)
        tasks[task] = {"items": len(items), "choices": sum(len(item.choices) for item in items), "items_differ": differ}
    record = {"command": command_line(__file__, sys.argv[1:]), "tokenizer": f"{type(tokenizer).__name__} of "
              "SmolLM2-135M-Instruct (the default model)", "tasks": tasks}
    write_result(args.out, record, _markdown)


if __name__ == "__main__":
    main()
