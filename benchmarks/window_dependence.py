"""How much do perplexity intervals that resample windows as if independent understate the uncertainty?

`evaluate_perplexity` (by default) and compare.py's paired marks resample 512-token windows. Consecutive windows of one long
document are not independent (a Wikipedia article runs over ~15 windows), so those intervals may be too narrow.
This script re-reads the per-window negative log-likelihoods that compare.py stores in its JSON rows (no model
forward) and recomputes every interval with a *document-clustered* bootstrap: each window belongs to the document
its first scored token is in, the documents are resampled with replacement, and a document brings all its windows
(the same ratio estimator, summed over documents: `evaluate_perplexity(..., resample_by="documents")`). It prints both intervals, their width ratio, and for every
paired comparison compare.py marks (each row against dense) and every one `verdict.py` shows (the default D-Pruner
against each baseline) whether the mark changes. Only the tokenizer is loaded (to find the document of each window).

    python benchmarks/window_dependence.py benchmarks/results/compare_medical_full.json \
        benchmarks/results/compare_legal_full.json --out benchmarks/results/window_dependence.json
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys

import numpy as np
from common import command_line, write_result

from optimum_dpruner.models.default_model import default_model_path
from optimum_dpruner.data.calibration import window_bos_id
from optimum_dpruner.evaluation import (
    bootstrap_interval,
    group_sums,
    paired_bootstrap,
    perplexity_statistic,
    tokenize_documents,
    window_starts,
)
from optimum_dpruner.models.loading import load_tokenizer

SOURCES = {"general_ppl": "builtin:general", "medical": "builtin:medical", "legal": "builtin:legal"}
CANDIDATE = "dpruner/general+domain"
BASELINES = ["sparsegpt/domain", "sparsegpt/mixed", "wanda/domain", "wanda/mixed"]


def window_documents(tokenizer, source: str, window: int = 512) -> list[int]:
    """For each perplexity window `evaluate_perplexity` cuts from `source` with compare.py's settings (non-overlapping,
    all of them, BOS as `"auto"`), the index of the document its first scored token is in, as
    `PerplexityResult.window_documents` gives it (non-overlapping windows: the document of the window's first token)."""
    ids, starts = tokenize_documents(source, tokenizer)
    span = window - (window_bos_id(tokenizer, "auto") is not None)
    return [bisect.bisect_right(starts, b) - 1 for b in window_starts(len(ids), span, span)]


def _units(windows: dict, documents: list[int] | None) -> tuple:
    """What the bootstrap resamples: the windows' NLL and scored-token sums, or (given each window's document) the
    documents' sums (documents that own no window drop out)."""
    if documents is None:
        return windows["nll"], windows["tokens"]
    return group_sums(documents, windows["nll"], windows["tokens"])


def _interval(windows: dict, documents: list[int] | None) -> tuple[float, float]:
    nll, tokens = _units(windows, documents)
    return bootstrap_interval(perplexity_statistic(nll, tokens), len(tokens))


def _paired(a: dict, b: dict, documents: list[int] | None):
    if a["tokens"] != b["tokens"]:
        raise SystemExit("two rows scored different windows; they cannot be paired")
    (na, ta), (nb, tb) = _units(a, documents), _units(b, documents)
    return paired_bootstrap(perplexity_statistic(na, ta), perplexity_statistic(nb, tb), len(ta), relative=True)


def study(rows: list[dict], documents: dict[str, list[int]]) -> dict:
    """Intervals and paired marks of one compare file under window and document resampling."""
    domain = rows[0]["domain"]
    sets = {"general_ppl": documents["general_ppl"], "domain_ppl": documents[domain]}
    result = {"domain": domain, "sets": {}, "pairs": []}
    dense = next(r for r in rows if r["method"] == "dense")
    for key, docs in sets.items():
        if len(docs) != len(dense[f"{key}_windows"]["tokens"]):
            raise SystemExit(f"{domain} {key}: {len(docs)} windows cut here, {len(dense[f'{key}_windows']['tokens'])} stored")
        intervals = {}  # run -> (window interval, document interval)
        for row in rows:  # the window intervals must be the ones compare.py stored
            intervals[row["run"]] = _interval(row[f"{key}_windows"], None), _interval(row[f"{key}_windows"], docs)
            low, high = intervals[row["run"]][0]
            if abs(low - row[f"{key}_low"]) > 1e-3 or abs(high - row[f"{key}_high"]) > 1e-3:
                raise SystemExit(f"{row['run']} {key}: window interval [{low}, {high}] is not the stored one")
        ratios = [(d[1] - d[0]) / (w[1] - w[0]) for w, d in intervals.values()]
        result["sets"][key] = {"windows": len(docs), "documents": len(set(docs)),
                               "dense": [dense[key], *intervals[dense["run"]][0], *intervals[dense["run"]][1]],
                               "width_ratio": [float(np.min(ratios)), float(np.median(ratios)), float(np.max(ratios))]}
    index = {f"{r['method']}/{r['pattern']}/{r['calibration']}": r for r in rows}
    pairs = [(name, "dense/-/-") for name in index if name != "dense/-/-"]
    for pattern in sorted({r["pattern"] for r in rows if r["method"] != "dense"}):
        cand = "/".join([CANDIDATE.split("/")[0], pattern, CANDIDATE.split("/")[1]])
        pairs += [(cand, f"{b.split('/')[0]}/{pattern}/{b.split('/')[1]}") for b in BASELINES if cand in index]
    for a, b in pairs:
        if b not in index:
            continue
        for key, docs in sets.items():
            w, d = (_paired(index[a][f"{key}_windows"], index[b][f"{key}_windows"], u) for u in (None, docs))
            result["pairs"].append({"row": a, "reference": b, "set": key, "difference": w.difference,
                                    "windows": [w.low, w.high], "documents": [d.low, d.high],
                                    "mark_changes": w.significant != d.significant})
    return result


def _markdown(record: dict) -> str:
    lines = [f"Command: `{record['command']}`", "",
             "Rows read: " + ", ".join(f"{path} {n}" for path, n in record["rows"].items()), "",
             "Perplexity intervals (95% percentile bootstrap, 2000 resamples, seed 0) resampling windows, as the library does by default and compare.py "
             "stores, against resampling documents (each window counted in the document its first scored token is in). "
             "Width ratio: document interval width / window interval width, over every row of the file (min, median, max).", "",
             "| file domain | set | windows | documents owning a window | dense ppl | window interval | document interval | width ratio (min / median / max) |",
             "|---|---|---|---|---|---|---|---|"]
    for study_ in record["studies"]:
        for key, s in study_["sets"].items():
            ppl, wl, wh, dl, dh = s["dense"]
            r = s["width_ratio"]
            lines.append(f"| {study_['domain']} | {key} | {s['windows']} | {s['documents']} | {ppl:.2f} | [{wl:.2f}, {wh:.2f}] | "
                         f"[{dl:.2f}, {dh:.2f}] | {r[0]:.2f} / {r[1]:.2f} / {r[2]:.2f} |")
    changed = [p for s in record["studies"] for p in s["pairs"] if p["mark_changes"]]
    total = sum(len(s["pairs"]) for s in record["studies"])
    lines += ["", f"Paired comparisons (relative perplexity difference; compare.py's marks against dense and verdict.py's "
                  f"D-Pruner-against-baseline cells): {total}, of which {len(changed)} change significance under document "
                  "resampling.", "",
              "| domain | row | reference | set | difference | window interval | document interval | mark changes |",
              "|---|---|---|---|---|---|---|---|"]
    for study_ in record["studies"]:
        for p in study_["pairs"]:
            if p["reference"] == "dense/-/-" and not p["mark_changes"]:
                continue
            lines.append(f"| {study_['domain']} | {p['row']} | {p['reference']} | {p['set']} | {p['difference'] * 100:+.1f}% | "
                         f"[{p['windows'][0] * 100:+.1f}%, {p['windows'][1] * 100:+.1f}%] | "
                         f"[{p['documents'][0] * 100:+.1f}%, {p['documents'][1] * 100:+.1f}%] | {'yes' if p['mark_changes'] else 'no'} |")
    lines += ["", "Rows against dense are listed only where the mark changes; every D-Pruner-against-baseline cell is listed."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="compare.py JSON files with per-window rows (full test sets)")
    parser.add_argument("--out", default="benchmarks/results/window_dependence.json")
    args = parser.parse_args()
    tokenizer = load_tokenizer(default_model_path())
    files = [json.load(open(f)) for f in args.files]
    needed = {"general_ppl"} | {f["rows"][0]["domain"] for f in files}
    documents = {key: window_documents(tokenizer, SOURCES[key]) for key in needed}
    record = {"command": command_line("benchmarks/window_dependence.py", sys.argv[1:]),
              "rows": {path: len(f["rows"]) for path, f in zip(args.files, files)},
              "studies": [study(f["rows"], documents) for f in files]}
    write_result(args.out, record, _markdown)


if __name__ == "__main__":
    main()
