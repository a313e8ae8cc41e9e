"""Helpers shared by the benchmark scripts: the validation texts, test perplexities, and writing a result as JSON
plus markdown (and re-writing the markdown alone)."""

from __future__ import annotations

import json
import os
import shlex
from typing import Any, Callable

PEER_SETS = {"wikipedia": "builtin:general", "pubmed": "builtin:medical", "legislation": "builtin:legal"}


def _jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def validation_texts(data: str) -> dict[str, list[str]]:
    """Validation text, disjoint from the calibration bundle and from every test split of the data bundle at `data`.

    Returns:
        `{"general": ABC news articles (general/lee_news.jsonl, not Wikipedia), "medical": PubMed *train*-split
        abstracts 1000-1299, title and text (the bundled calibration file holds abstracts 0-999), "legal": CaseHOLD
        *train* items 1000-1299 with the correct holding in place of <HOLDING>, as the bundle builds its calibration
        texts from items 0-999 (court opinions; the legal test perplexity is on US legislation, which has no
        validation split here)}`.
    """

    def casehold(record: dict) -> str:
        holding, prompt = record["holding_" + record["label"]], record["citing_prompt"]
        return prompt.replace("<HOLDING>", holding) if "<HOLDING>" in prompt else prompt + " " + holding

    return {
        "general": [r["text"] for r in _jsonl(os.path.join(data, "general", "lee_news.jsonl"))],
        "medical": [
            r["title"] + "\n" + r["text"] for r in _jsonl(os.path.join(data, "medical", "pubmed_train.jsonl"))[1000:1300]
        ],
        "legal": [casehold(r) for r in _jsonl(os.path.join(data, "legal", "casehold_train.jsonl"))[1000:1300]],
    }


def command_line(script: str, argv: list[str]) -> str:
    """The command that ran `script` with `argv`, as a result file names it."""
    return "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(script), *argv])


def smollm2(threads: int):
    """The default model (SmolLM2-135M-Instruct, fp32, eval mode) and its tokenizer, with torch on `threads` threads."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from optimum_dpruner.models.default_model import ensure_default_model

    torch.set_num_threads(threads)
    path = ensure_default_model()
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(path)


def write_result(out: str, record: dict[str, Any], markdown: Callable[[dict[str, Any]], str], echo: bool = True) -> None:
    """Write `record` to the JSON file `out` and `markdown(record)` beside it (`.md`), and print the markdown (`echo`)."""
    with open(out, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    text = markdown(record)
    with open(os.path.splitext(out)[0] + ".md", "w", encoding="utf-8") as f:
        f.write(text)
    if echo:
        print(text)


def test_perplexities(model, tokenizer, sets: dict[str, str], windows: int) -> dict[str, float]:
    """Perplexity of `model` on the first `windows` 512-token test windows of each of `sets` (name: source)."""
    from optimum_dpruner import perplexity

    return {name: round(perplexity(model, tokenizer, source, window=512, limit=windows, progress=False), 3)
            for name, source in sets.items()}


def add_output_arguments(parser, default_out: str) -> None:
    """`--out` (the JSON result, its markdown beside it) and `--markdown-only`."""
    parser.add_argument("--out", default=default_out)
    parser.add_argument("--markdown-only", action="store_true", help="only re-write the .md table from an existing --out")


def rewrite_markdown(args, write_markdown: Callable[[dict, str], None]) -> bool:
    """With `--markdown-only`, re-write the table from `--out`'s JSON and return True (the script is done)."""
    if not args.markdown_only:
        return False
    with open(args.out, encoding="utf-8") as f:
        write_markdown(json.load(f), args.out)
    return True
