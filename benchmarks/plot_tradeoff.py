"""Draw the trade-off between general and domain ability from compare.py results: one PNG per domain.

    python benchmarks/plot_tradeoff.py benchmarks/results/compare_medical_full.json --suffix _full --criteria
    python benchmarks/plot_tradeoff.py benchmarks/results/compare_legal_full.json --suffix _full --criteria
    python benchmarks/plot_tradeoff.py benchmarks/results/compare_medical.json benchmarks/results/compare_medical_2of4.json \
        benchmarks/results/compare_legal.json benchmarks/results/compare_legal_2of4.json --criteria

For each domain, one panel per sparsity pattern: general perplexity (Wikipedia test) against domain perplexity
(PubMed / US legislation test), both on log axes, lower-left is better. One point per method x calibration, with
its 95% bootstrap interval as bars when the JSON has them (compare.py writes them; older files have none); the
dense model is a black star in every panel; the dashed line is the Pareto front of the pruned models (those no
other pruned model beats on both axes). Writes `tradeoff_<domain><--suffix>.png` into `--out-dir` (default: next to the first JSON); the rows of several files of
one domain (e.g. one file per pattern) are pooled into its figure. With `--criteria` each panel's title gives
`verdict.py`'s verdict there and what it was judged on: perplexity and the task metrics that discriminate at this
size (`benchmarks/discrimination.py`); PubMedQA and CaseHOLD on SmolLM2-135M do not, and are not counted.

Needs matplotlib: `pip install optimum-dpruner[benchmarks]` (or `pip install matplotlib`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

DOMAIN_TEXT = {"medical": "PubMed", "legal": "US legislation"}
MARKERS = {"general": "o", "domain": "s", "general+domain": "D", "none": "X"}


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points that no other point beats on both coordinates (lower is better), by increasing x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front, best_y = [], float("inf")
    for i in order:
        if points[i][1] < best_y:
            front.append(i)
            best_y = points[i][1]
    return front


def _errors(rows: list[dict], key: str) -> list[list[float]] | None:
    """Asymmetric error bars `[[below...], [above...]]` of `key`, or None when a row has no interval."""
    if not all(f"{key}_low" in r for r in rows):
        return None
    return [[r[key] - r[f"{key}_low"] for r in rows], [r[f"{key}_high"] - r[key] for r in rows]]


def criteria(rows: list[dict]) -> dict[tuple[str, str], str]:
    """`(domain, pattern) -> "holds" | "holds so far" | "does not hold"`: the criteria as `verdict.py` judges them
    (its defaults, discriminating task metrics only; "so far": some baseline rows are missing); a panel without the
    candidate's or any baseline's rows is left out."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from verdict import verdict

    found = {}
    for domain, pattern in {(r["domain"], r["pattern"]) for r in rows if r["method"] != "dense"}:
        _, failures, missing = verdict(rows, domain, pattern)
        if failures is not None:
            found[(domain, pattern)] = "does not hold" if failures else "holds so far" if missing else "holds"
    return found


#: methods in the order of their colours, so that a method has one colour in every figure whatever rows it holds
COLOUR_ORDER = ("dpruner", "dpruner-paper", "sparsegpt", "wanda", "magnitude")


def colour_slots(methods) -> dict[str, int]:
    """`method -> index` of its colour: `COLOUR_ORDER` first, then other methods (the peers) by name."""
    others = sorted(set(methods) - set(COLOUR_ORDER) - {"dense"})
    return {m: k for k, m in enumerate([*COLOUR_ORDER, *others])}


def judged_on(rows: list[dict], domain: str, pattern: str) -> str:
    """What the verdict of a panel is judged on, for its title: perplexity and the task metrics it counts."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from verdict import counted

    metrics: dict[str, list[str]] = {}
    for name in counted(rows, domain, pattern):  # "billsum rouge1", "billsum rougeL" -> "billsum rouge1/rougeL"
        task, metric = name.split(" ")
        metrics.setdefault(task, []).append(metric)
    return " + ".join(["perplexity", *(f"{task} {'/'.join(m)}" for task, m in metrics.items())])


def draw(rows: list[dict], domain: str, path: str, title: str = "", verdicts: dict | None = None) -> str:
    """One figure for `domain`: a panel per pattern with the dense row in each (its title gives the verdict there and
    what it was judged on, when `verdicts` has the panel); returns `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    rows = [r for r in rows if r["domain"] == domain]
    dense = [r for r in rows if r["method"] == "dense"]
    patterns = sorted({r["pattern"] for r in rows if r["method"] != "dense"}, key=lambda p: (p != "unstructured", p))
    colours = {m: plt.get_cmap("tab10")(k % 10) for m, k in colour_slots(r["method"] for r in rows).items()}
    figure, axes = plt.subplots(1, len(patterns), figsize=(6.4 * len(patterns), 5.6), squeeze=False)
    for ax, pattern in zip(axes[0], patterns):
        panel = dense + [r for r in rows if r["pattern"] == pattern and r["method"] != "dense"]
        for r in panel:
            is_dense = r["method"] == "dense"
            ax.errorbar(r["general_ppl"], r["domain_ppl"], xerr=_errors([r], "general_ppl"), yerr=_errors([r], "domain_ppl"),
                        fmt="*" if is_dense else MARKERS.get(r["calibration"], "^"), markersize=14 if is_dense else 8,
                        color="black" if is_dense else colours[r["method"]], ecolor="0.6", elinewidth=1, capsize=2,
                        label="dense" if is_dense else f"{r['method']} ({r['calibration']})")
        points = [(r["general_ppl"], r["domain_ppl"]) for r in panel if r["method"] != "dense"]
        front = pareto_front(points)
        ax.plot([points[i][0] for i in front], [points[i][1] for i in front], "--", color="0.3", linewidth=1, zorder=0,
                label="Pareto front")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("general perplexity (Wikipedia test)")
        ax.set_ylabel(f"domain perplexity ({DOMAIN_TEXT.get(domain, domain)} test)")
        verdict = (verdicts or {}).get((domain, pattern))
        ax.set_title(f"{domain}, 50% {pattern}" + (f"\nverdict on {judged_on(rows, domain, pattern)}: {verdict}" if verdict else ""),
                     color="firebrick" if verdict == "does not hold" else "black", fontsize=9.5)
        ax.grid(True, which="both", linewidth=0.3)
        ax.legend(fontsize=7, loc="upper left")
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="compare.py JSON files")
    parser.add_argument("--out-dir", default=None, help="folder of the PNGs (default: the first JSON's folder)")
    parser.add_argument("--suffix", default="", help="appended to each PNG's name (tradeoff_<domain><suffix>.png), e.g. _full")
    parser.add_argument("--criteria", action="store_true",
                        help="each panel's title gives the verdict there (benchmarks/verdict.py's defaults) and what it was judged on")
    args = parser.parse_args()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit("plot_tradeoff.py needs matplotlib: pip install 'optimum-dpruner[benchmarks]' (or pip install matplotlib)")
    out_dir = args.out_dir or os.path.dirname(os.path.abspath(args.results[0]))
    os.makedirs(out_dir, exist_ok=True)
    rows, titles = [], {}
    for path in args.results:  # the files of one domain are pooled (e.g. one per pattern); one dense row per domain
        with open(path) as f:
            data = json.load(f)
        for r in data["rows"]:
            if r["method"] != "dense" or not any(x["method"] == "dense" and x["domain"] == r["domain"] for x in rows):
                rows.append(r)
            titles.setdefault(r["domain"], []).append(f"{os.path.basename(path)} ({data['date']})")
    verdicts = criteria(rows) if args.criteria else None
    for domain in sorted(titles):
        target = os.path.join(out_dir, f"tradeoff_{domain}{args.suffix}.png")
        print(draw(rows, domain, target, title="; ".join(dict.fromkeys(titles[domain])), verdicts=verdicts))


if __name__ == "__main__":
    main()
