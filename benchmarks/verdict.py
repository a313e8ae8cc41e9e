"""Does one row of compare.py beat the baselines? Issue 17's criteria, read from the committed JSON files.

    python benchmarks/verdict.py benchmarks/results/compare_medical.json benchmarks/results/compare_medical_2of4.json \
        benchmarks/results/compare_legal.json benchmarks/results/compare_legal_2of4.json \
        --out benchmarks/results/verdict.md

For each domain and pattern, the candidate row (`--candidate`, default the library's D-Pruner) against each baseline
row (`--baselines`: SparseGPT and Wanda on domain text and mixed, MixCal): its domain perplexity must be strictly
below every baseline's, its general perplexity at most `--general-slack` (1.05) x the best general perplexity of
any baseline row (Wanda and SparseGPT with any calibration, magnitude, the peers), and each domain task metric that
the compare tables show (compare.TASK_METRICS) not below a baseline's beyond the interval (the paired 95% bootstrap of
candidate - baseline must not lie wholly below 0). Every difference is paired on the same windows and items.
While some of those rows are still missing (a compare run part-way: a `--baselines` row, or SparseGPT on general
text, which every compare run has and which may set the best general perplexity), a verdict with no failure reads
"Holds so far" and names them; a failure is final, since more rows can only add failures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from compare import DOMAIN_TASKS, TASK_METRICS, _paired  # noqa: E402

CANDIDATE = "dpruner/general+domain"
BASELINES = ["sparsegpt/domain", "sparsegpt/mixed", "wanda/domain", "wanda/mixed"]
GENERAL_SLACK = 1.05
#: methods whose rows count for "the best general perplexity of any baseline"
GENERAL_POOL = ("magnitude", "wanda", "sparsegpt")
#: a row every compare run has that is not a `--baselines` row but counts for the best general perplexity
GENERAL_EXPECTED = "sparsegpt/general"


def _fmt(paired) -> str:
    if paired is None:
        return "-"
    unit = "%" if paired.relative else ""
    scale = 100 if paired.relative else 1
    digits = 1 if paired.relative else 3
    return (f"{paired.difference * scale:+.{digits}f}{unit} [{paired.low * scale:+.{digits}f}{unit}, "
            f"{paired.high * scale:+.{digits}f}{unit}]")


def verdict(rows: list[dict], domain: str, pattern: str, candidate: str = CANDIDATE, baselines: list[str] = BASELINES,
            slack: float = GENERAL_SLACK) -> tuple[str, list[str] | None, list[str]]:
    """The markdown section of one domain and pattern, the criteria that fail there (`None`: no candidate row or no
    baseline row) and the baselines not measured there."""
    index = {f"{r['method']}/{r['calibration']}": r for r in rows if r["domain"] == domain and r["pattern"] == pattern}
    cand = index.get(candidate)
    present = [b for b in baselines if b in index]
    missing = [b for b in dict.fromkeys([*baselines, GENERAL_EXPECTED]) if b not in index]
    if cand is None or not present:
        text = f"### {domain}, {pattern}\n\nmissing rows: {candidate if cand is None else 'every baseline'}\n"
        return text, None, missing
    # "the best general perplexity of any baseline": every baseline row, SparseGPT on general text included
    pool = [k for k in index if k.split("/")[0] in GENERAL_POOL or k.startswith("llmcompressor-")]
    best_name = min(pool, key=lambda k: index[k]["general_ppl"])
    best_general = index[best_name]["general_ppl"]
    tasks = [(t, m) for t in DOMAIN_TASKS[domain] for m in TASK_METRICS[t] if t in cand]
    head = ["baseline", "general ppl", "domain ppl", "domain ppl: candidate / baseline - 1",
            *[f"{t} {m}: candidate - baseline" for t, m in tasks]]
    lines = [f"### {domain}, {pattern}: `{candidate}` against the baselines", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    failures = []
    for name in present:
        base = index[name]
        cells = [name, f"{base['general_ppl']:.2f}", f"{base['domain_ppl']:.2f}", _fmt(_paired(cand, base, "domain_ppl", None))]
        if not cand["domain_ppl"] < base["domain_ppl"]:
            failures.append(f"domain perplexity {cand['domain_ppl']:.2f} is not below {name}'s {base['domain_ppl']:.2f}")
        for task, metric in tasks:
            paired = _paired(cand, base, task, metric)  # None where base lacks the task
            cells.append(_fmt(paired))
            if paired is not None and paired.high < 0:
                failures.append(f"{task} {metric} below {name}'s beyond the interval ({_fmt(paired)})")
        lines.append("| " + " | ".join(cells) + " |")
    ratio = cand["general_ppl"] / best_general
    if ratio > slack:
        failures.append(f"general perplexity {cand['general_ppl']:.2f} is {ratio:.3f}x the best baseline's {best_general:.2f} ({best_name}) "
                        f"(allowed {slack}x)")
    outcome = "Does not hold" if failures else "Holds so far" if missing else "Holds"
    lines += ["", f"Candidate: general {cand['general_ppl']:.2f} ({ratio:.3f}x the best baseline's, {best_name} {best_general:.2f}), "
                  f"domain {cand['domain_ppl']:.2f}. **{outcome}**"
                  + ("" if not failures else ": " + "; ".join(failures)) + "."
                  + (f" Rows not measured yet: {', '.join(missing)}." if missing else "")]
    return "\n".join(lines) + "\n", failures, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="compare.py JSON files")
    parser.add_argument("--candidate", default=CANDIDATE, help="method/calibration of the row to judge")
    parser.add_argument("--baselines", nargs="+", default=BASELINES)
    parser.add_argument("--general-slack", type=float, default=GENERAL_SLACK)
    parser.add_argument("--out", default=None, help="markdown file (default: print)")
    args = parser.parse_args()
    rows, commands = [], []
    for path in args.results:
        with open(path) as f:
            data = json.load(f)
        rows += data["rows"]
        commands.append(f"`{data['command']}` ({data['date']})")
    text = [f"Command: `python {' '.join(sys.argv)}`", "", "From: " + "; ".join(commands), ""]
    keys = sorted({(r["domain"], r["pattern"]) for r in rows if r["method"] != "dense"}, key=lambda k: (k[0], k[1] != "unstructured"))
    text += [verdict(rows, d, p, args.candidate, args.baselines, args.general_slack)[0] for d, p in keys]
    out = "\n".join(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(out)
    print(out)


if __name__ == "__main__":
    main()
