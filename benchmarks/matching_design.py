"""Choose the design of the matching tasks (optimum_dpruner/evaluation/matching.py) on *train* items only.

    python benchmarks/matching_design.py --domain medical --out benchmarks/results/matching_design_medical.json
    python benchmarks/matching_design.py --domain general --out benchmarks/results/matching_design_general.json
    python benchmarks/matching_design.py --domain legal --out benchmarks/results/matching_design_legal.json

Items are built from train texts of the project's data bundle (`--data-dir`, default ../shared/data), never
from the test files the tasks report on:
- medical: PubMed *train* abstracts 1000-1299 (the bundled calibration file holds 0-999), title <-> abstract;
- general: the 77 Wikipedia *train* articles, next sentence;
- legal: CaseHOLD *train* opinions 1000-1299 (the bundled calibration file holds 0-999) with the correct holding in
  place, next sentence (one per opinion; each opinion is one paragraph, so the distractors come from other ones).
(BillSum has no train split here: `billsum_title` takes the medical design, the same "text -> its title" form;
`billsum_next` the legal next-sentence design.)

Each design variant is scored for the dense SmolLM2 and for magnitude pruning at 30% and 50% (no data, seconds),
on the same `--items` items (a seeded subset), with 95% percentile bootstrap intervals and the paired difference
dense - pruned. A later invocation with the same --out adds its `--models` to the file (one model per run keeps
each run short); the first model ever run is the reference of the differences. A variant group shares its
forward passes: distractor sets with the same contexts are scored in one call, and every normalisation reads the
same log-probabilities; "group CPU s" is the CPU time of that call (one thread: the wall time on an idle core).

Rule, fixed before the run: among variants whose dense interval excludes chance (0.25), take the one whose paired
difference dense - magnitude 30% has the largest lower bound (it tells a mildly damaged model apart best); a
variant that costs more must win by more than its interval's half-width, else the cheaper one is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def _read(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _groups(domain: str, data_dir: str) -> dict[str, dict]:
    """Variant groups: `{group: {"items": {distractors: [ChoiceItem]}, "neutral": str}}` (items of a group share contexts)."""
    from optimum_dpruner.evaluation.matching import LEGAL_ABBREVIATIONS, matching_items, next_sentence_items

    if domain == "medical":
        records = _read(os.path.join(data_dir, "medical", "pubmed_train.jsonl"))[1000:1300]
        abstracts = [" ".join(r["text"].split()) for r in records]
        titles = [" " + r["title"] for r in records]

        def cut(text: str, words: int | None) -> str:
            return " ".join(text.split()[:words]) if words else text

        groups = {}
        for name, words in (("abstract -> title", None), ("abstract (first 64 words) -> title", 64)):
            contexts = [f"Abstract: {cut(a, words)}\nTitle:" for a in abstracts]
            groups[name] = {"neutral": "Title:", "items": {"random": matching_items(contexts, titles),
                                                           "similar": matching_items(contexts, titles, abstracts)}}
        contexts = [f"Title: {t.strip()}\nAbstract:" for t in titles]
        answers = [" " + cut(a, 48) for a in abstracts]
        groups["title -> abstract (first 48 words)"] = {"neutral": "Abstract:", "items": {
            "random": matching_items(contexts, answers), "similar": matching_items(contexts, answers, abstracts)}}
        return groups
    if domain == "legal":  # CaseHOLD train opinions 1000-1299 (each one paragraph): distractors from other documents
        from common import validation_texts

        opinions = validation_texts(data_dir)["legal"]
        items = next_sentence_items(opinions, per_article=1, context_words=64, same_article=False,
                                    abbreviations=LEGAL_ABBREVIATIONS)
        return {"64 context words": {"neutral": "\n", "items": {"other documents": items}}}
    articles = [r["text"] for r in _read(os.path.join(data_dir, "general", "wikipedia_train.jsonl"))]
    groups = {}
    for name, words in (("64 context words", 64), ("24 context words", 24)):
        groups[name] = {"neutral": "\n", "items": {
            "same article": next_sentence_items(articles, per_article=4, context_words=words, same_article=True),
            "other articles": next_sentence_items(articles, per_article=4, context_words=words, same_article=False)}}
    return groups


def model_variant(name: str):
    """The dense SmolLM2 (`"dense"`), or pruned by a data-free method at a sparsity (`"magnitude:0.5"`), with its tokenizer."""
    from optimum_dpruner import DPruner, DPrunerConfig

    if name == "dense":
        pruner = DPruner.from_pretrained(config=DPrunerConfig(method="magnitude"))
        return pruner.model, pruner.tokenizer
    method, sparsity = name.split(":")
    pruner = DPruner.from_pretrained(config=DPrunerConfig(method=method, sparsity=float(sparsity)))
    result = pruner.prune(progress=False)
    return result.model, result.tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", required=True, choices=["medical", "general", "legal"])
    parser.add_argument("--items", type=int, default=100, help="items per variant (seeded subset, default 100)")
    parser.add_argument("--models", nargs="+", default=["dense", "magnitude:0.3", "magnitude:0.5"])
    parser.add_argument("--data-dir", default=os.path.join(HERE, "..", "..", "shared", "data"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from optimum_dpruner.evaluation.choice import NORMALISATIONS, choice_logprobs, choose
    from optimum_dpruner.evaluation.records import seeded_subset
    from optimum_dpruner.evaluation.uncertainty import bootstrap_interval, mean_statistic

    groups = _groups(args.domain, args.data_dir)
    out = {"domain": args.domain, "items": args.items, "threads": args.threads, "models": [], "results": {}, "hits": {}}
    if os.path.exists(args.out):  # add models to an earlier run of the same design (one model per invocation is fine)
        with open(args.out) as f:
            out = json.load(f)
        if (out["domain"], out["items"]) != (args.domain, args.items):
            raise SystemExit(f"{args.out} holds another run ({out['domain']}, {out['items']} items); pass another --out.")
    for model_name in args.models:
        model, tokenizer = model_variant(model_name)
        out["results"][model_name], out["hits"][model_name] = {}, {}
        for group, spec in groups.items():
            sets = {k: seeded_subset(v, args.items, 0) for k, v in spec["items"].items()}
            flat = [item for items in sets.values() for item in items]
            start = time.process_time()  # CPU seconds: with one thread, the wall time on an idle core
            scores = choice_logprobs(model, tokenizer, flat, spec["neutral"], batch_size=8, progress=False)
            seconds = time.process_time() - start
            offset = 0
            for distractors, items in sets.items():
                for normalisation in NORMALISATIONS:
                    predictions = choose(scores, normalisation)[offset : offset + len(items)]
                    hits = [int(p == item.label) for p, item in zip(predictions, items)]
                    variant = f"{group} / {distractors} / {normalisation}"
                    low, high = bootstrap_interval(mean_statistic(hits), len(hits))
                    out["results"][model_name][variant] = {"accuracy": round(sum(hits) / len(hits), 4), "low": round(low, 4),
                                                           "high": round(high, 4), "group_seconds": round(seconds, 1)}
                    out["hits"][model_name][variant] = hits
                offset += len(items)
            print(json.dumps({"model": model_name, "group": group, "seconds": round(seconds, 1)}), flush=True)
        out["models"] += [] if model_name in out["models"] else [model_name]  # the first model stays the reference
        out.setdefault("commands", []).append("python " + " ".join(sys.argv))
        out["date"] = time.strftime("%Y-%m-%d", time.gmtime())
        del model
        _write(out, args.out)


def _write(out: dict, path: str) -> None:
    """The JSON (with every item's hit, so later invocations can add models) and the markdown table next to it."""
    from optimum_dpruner.evaluation.uncertainty import mean_statistic, paired_bootstrap

    reference, hits = out["models"][0], out["hits"]
    out["paired_vs_reference"] = {}
    for model_name in out["models"][1:]:
        out["paired_vs_reference"][model_name] = {}
        for variant, first in hits[reference].items():
            d = paired_bootstrap(mean_statistic(first), mean_statistic(hits[model_name][variant]), len(first))
            out["paired_vs_reference"][model_name][variant] = {"difference": round(d.difference, 4), "low": round(d.low, 4),
                                                               "high": round(d.high, 4)}
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.splitext(path)[0] + ".md", "w") as f:
        f.write(_table(out))


def _table(out: dict) -> str:
    models = out["models"]
    reference, others = models[0], models[1:]
    head = ["variant", *(f"{m} accuracy [95%]" for m in models), *(f"{reference} - {m} [95%]" for m in others), "group CPU s"]
    commands = "; ".join(f"`{c}`" for c in out["commands"])
    lines = [f"Commands: {commands}\n", f"Date: {out['date']}; {out['items']} items per variant, {out['threads']} thread(s); "
             "brackets: 95% percentile bootstrap intervals (paired for the differences).\n",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    paired = out["paired_vs_reference"]
    for variant, first in out["results"][reference].items():
        cells = [variant]
        for m in models:
            r = out["results"][m][variant]
            cells.append(f"{r['accuracy']:.3f} [{r['low']:.3f}, {r['high']:.3f}]")
        cells += [f"{paired[m][variant]['difference']:+.3f} [{paired[m][variant]['low']:+.3f}, {paired[m][variant]['high']:+.3f}]"
                  for m in others]
        cells.append(f"{first['group_seconds']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
