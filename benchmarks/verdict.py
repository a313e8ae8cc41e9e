"""Does one row of compare.py beat the baselines? The criteria, read from the committed JSON files.

    python benchmarks/verdict.py benchmarks/results/compare_medical_full.json benchmarks/results/compare_legal_full.json \
        --out benchmarks/results/verdict_full.md
    python benchmarks/verdict.py benchmarks/results/compare_medical.json benchmarks/results/compare_medical_2of4.json \
        benchmarks/results/compare_legal.json benchmarks/results/compare_legal_2of4.json \
        --out benchmarks/results/verdict.md

For each domain and pattern, the candidate row (`--candidate`, default the library's D-Pruner) against each baseline
row (`--baselines`: SparseGPT and Wanda on domain text and mixed, MixCal): its domain perplexity must be strictly
below every baseline's, its general perplexity at most `--general-slack` (1.05) x the best general perplexity of
any baseline row (Wanda and SparseGPT with any calibration, magnitude, the peers), and each domain task metric that
the compare tables show (compare.TASK_METRICS) and that discriminates at this model size not below a baseline's
beyond the interval (the paired 95% bootstrap of candidate - baseline must not lie wholly below 0). Which metrics
discriminate is decided once, by `benchmarks/discrimination.py` on the full test sets (`--discrimination`, default
`benchmarks/results/discrimination.json`); the others (PubMedQA, CaseHOLD on SmolLM2-135M) stay in the tables,
marked, and are not counted. Every difference is paired on the same windows and items.
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
import discrimination  # noqa: E402
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


def counted(rows: list[dict], domain: str, pattern: str, candidate: str = CANDIDATE, table: dict | None = None) -> list[str]:
    """The domain task metrics of `candidate`'s row in `domain` and `pattern` that a verdict counts (those that
    discriminate)."""
    table = discrimination.load() if table is None else table
    have = {t for r in rows if (r["domain"], r["pattern"], f"{r['method']}/{r['calibration']}") == (domain, pattern, candidate)
            for t in r}
    return [f"{t} {m}" for t in DOMAIN_TASKS[domain] for m in TASK_METRICS[t]
            if t in have and discrimination.counts(table, domain, t, m)]


def verdict(rows: list[dict], domain: str, pattern: str, candidate: str = CANDIDATE, baselines: list[str] = BASELINES,
            slack: float = GENERAL_SLACK, table: dict | None = None) -> tuple[str, list[str] | None, list[str]]:
    """The markdown section of one domain and pattern, the criteria that fail there (`None`: no candidate row or no
    baseline row) and the baselines not measured there. `table`: the discrimination test's results
    (`discrimination.load()`, the default); a task metric that does not discriminate is shown, marked, not counted."""
    table = discrimination.load() if table is None else table
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
    counts = {(t, m): discrimination.counts(table, domain, t, m) for t, m in tasks}
    head = ["baseline", "general ppl", "domain ppl", "domain ppl: candidate / baseline - 1",
            *[f"{t} {m}: candidate - baseline" + ("" if counts[t, m] else " †") for t, m in tasks]]
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
            if counts[task, metric] and paired is not None and paired.high < 0:
                failures.append(f"{task} {metric} below {name}'s beyond the interval ({_fmt(paired)})")
        lines.append("| " + " | ".join(cells) + " |")
    ratio = cand["general_ppl"] / best_general
    if ratio > slack:
        failures.append(f"general perplexity {cand['general_ppl']:.2f} is {ratio:.3f}x the best baseline's {best_general:.2f} ({best_name}) "
                        f"(allowed {slack}x)")
    outcome = "Does not hold" if failures else "Holds so far" if missing else "Holds"
    judged = ", ".join(["general and domain perplexity", *[f"{t} {m}" for t, m in tasks if counts[t, m]]])
    note = discrimination.footnote(table, domain, tasks)
    lines += ["", *([note.rstrip("\n"), ""] if note else []),
              f"Candidate: general {cand['general_ppl']:.2f} ({ratio:.3f}x the best baseline's, {best_name} {best_general:.2f}), "
              f"domain {cand['domain_ppl']:.2f}. Judged on {judged}: **{outcome}**"
                  + ("" if not failures else ": " + "; ".join(failures)) + "."
                  + (f" Rows not measured yet: {', '.join(missing)}." if missing else "")]
    return "\n".join(lines) + "\n", failures, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="compare.py JSON files")
    parser.add_argument("--candidate", default=CANDIDATE, help="method/calibration of the row to judge")
    parser.add_argument("--baselines", nargs="+", default=BASELINES)
    parser.add_argument("--general-slack", type=float, default=GENERAL_SLACK)
    parser.add_argument("--discrimination", default=discrimination.DEFAULT_PATH,
                        help="discrimination.py JSON: which task metrics a verdict counts")
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
    if not os.path.exists(args.discrimination):
        raise SystemExit(f"--discrimination {args.discrimination} does not exist; make it with benchmarks/discrimination.py.")
    table = discrimination.load(args.discrimination)
    text += [verdict(rows, d, p, args.candidate, args.baselines, args.general_slack, table)[0] for d, p in keys]
    out = "\n".join(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(out)
    print(out)


if __name__ == "__main__":
    main()
