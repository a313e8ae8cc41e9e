"""Pool repeated `profile_methods.py` runs (one JSON per invocation) into one table: per run name, the wall
seconds of each repeat, their mean and range, the stages' means and the peak RSS. Interleaved invocations of the old
and new code on one idle machine are how issue 17's "no more than today's" is judged (the spread between repeats of
one configuration is the yardstick for any difference).

    python benchmarks/time_summary.py benchmarks/results/dpruner_time_*_idle*.json --out benchmarks/results/dpruner_time_idle.md
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = collections.defaultdict(list)
    commands = []
    for path in args.files:
        with open(path) as f:
            record = json.load(f)
        legacy = "--legacy" in record["command"]
        commands.append(f"`{record['command']}` ({record['date']})")
        for run in record["runs"]:
            runs[("code of 7f24171: " if legacy else "this code: ") + run["run"]].append(run)
    lines = ["Command: `python benchmarks/time_summary.py " + " ".join(args.files) + f" --out {args.out}`", "",
             "From: " + "; ".join(commands), "",
             "| run | repeats | wall s each | mean | range | stages, mean s | peak RSS MiB |", "|---|---|---|---|---|---|---|"]
    for name, repeats in runs.items():
        walls = [r["total_seconds"] for r in repeats]
        stages = collections.defaultdict(list)
        for r in repeats:
            for k, v in r["stage_seconds"].items():
                stages[k].append(v)
        stage_text = ", ".join(f"{k} {statistics.mean(v):.1f}" for k, v in stages.items() if statistics.mean(v) >= 0.5)
        lines.append(f"| {name} | {len(walls)} | {', '.join(f'{w:.1f}' for w in walls)} | {statistics.mean(walls):.1f} | "
                     f"{min(walls):.1f}-{max(walls):.1f} | {stage_text} | {max(r['peak_rss_mib'] for r in repeats)} |")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
