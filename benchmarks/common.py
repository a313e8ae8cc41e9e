"""Helpers shared by the benchmark scripts: the validation texts, and writing a result as JSON plus markdown."""

from __future__ import annotations

import json
import os
import shlex
from typing import Any, Callable


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


def write_result(out: str, record: dict[str, Any], markdown: Callable[[dict[str, Any]], str]) -> None:
    """Write `record` to the JSON file `out` and `markdown(record)` beside it (`.md`), and print the markdown."""
    with open(out, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    text = markdown(record)
    with open(os.path.splitext(out)[0] + ".md", "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
