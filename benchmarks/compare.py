"""Compare pruning methods on SmolLM2-135M-Instruct: quality, pruning time and peak memory, per domain.

One command gives the table of benchmarks/README.md:

    python benchmarks/compare.py --domains medical --out benchmarks/results/compare_medical.json
    python benchmarks/compare.py --domains legal --out benchmarks/results/compare_legal.json

(`--resume` continues an interrupted command: the rows already in --out are kept, and only the missing ones run.
The resumed command may ask for more rows (other --domains, --methods, --patterns) and run at other --threads, but
must measure the same way (every other flag equal); the file then records it. `--tables-only` rewrites the markdown
table from --out, e.g. against another `--reference` row, without running anything.)

For each domain, at 50% unstructured and 2:4: the dense model; magnitude (no data); SparseGPT calibrated on general
text (Wikipedia train articles), on domain text (PubMed train abstracts; CaseHOLD train cases) and on both mixed
(calibration mixing, MixCal, at the library's default `domain_weight`); Wanda on domain text and mixed; D-Pruner as
the paper describes it (`DPrunerConfig.paper()`, row `dpruner-paper`) and with the library's default recipe
(`dpruner`). `CALIBRATIONS` lists the rows; Wanda on general text and the llm-compressor peers are options
(`--methods`, `--with-wanda-general`): each row costs ~25 minutes of evaluation on one core. Each run prunes a fresh model in its own subprocess (so its peak memory is its own),
then measures general perplexity (Wikipedia test articles), domain perplexity (PubMed test abstracts; US
legislation), the general task (wiki_next) and the domain's tasks (PubMedQA and pubmed_title; CaseHOLD, BillSum and
billsum_next), on the full test sets unless `--eval-windows`, `--task-limit` or `--billsum-limit` cut them.

Every number has its 95% percentile bootstrap interval (over windows for perplexity, over items for the tasks),
and each row stores its per-window NLL sums and token counts and its per-item results, so that any two rows can be
compared afterwards by a paired bootstrap on the same windows and items. The table marks with `*` a value whose
paired difference from the `--reference` row (default: dense) excludes 0 at 95%; `benchmarks/plot_tradeoff.py`
draws general against domain perplexity from the JSON.

Before any run, every evaluation text (perplexity documents and task items) is checked against every text the
calibration sets draw from (13-word spans, `optimum_dpruner.evaluation.overlap`): the run stops if an evaluation document
is a near-duplicate of calibration text; the counts are written into the results.

The peer rows (`llmcompressor-sparsegpt`, `llmcompressor-wanda`) run llm-compressor 0.14's `oneshot` in its own
virtual environment (`--peer-python`, made by `make peer-venv`) through `benchmarks/peer.py`, on the very token
windows our methods calibrate on (library defaults: 32 x 512, seed 0), and are evaluated here like every row.
Their "prune s" is `oneshot` alone (ours also counts cutting the calibration text into windows).

The D-Pruner 2:4 runs reuse the scores (G and I) of the unstructured runs of the same recipe (`--scores-dir`): their
"prune s" adds the time that computing them took, so it is the time to produce that model from nothing;
`own_seconds` is the rest (masking, or the reconstruction pass of the default recipe, which calibrates on the
data again). Results are appended to --out (JSON) as they finish, and a markdown table is written next to it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import subprocess
import sys
import time

from optimum_dpruner.cli.flags import auto_or_bool

PEER_PREFIX = "llmcompressor-"
GENERAL_TASKS = ("wiki_next",)
DOMAIN_TASKS = {"medical": ("pubmedqa", "pubmed_title"), "legal": ("casehold", "billsum", "billsum_next")}
#: the metrics the table shows, per task (every metric is stored in the JSON)
TASK_METRICS = {"pubmedqa": ("accuracy", "macro_f1"), "casehold": ("macro_f1",), "billsum": ("rouge1", "rougeL"),
                "pubmed_title": ("accuracy",), "billsum_next": ("accuracy",), "wiki_next": ("accuracy",)}
PERPLEXITY_SETS = ("general_ppl", "domain_ppl")
#: calibrations of each method's rows ("mixed": general + domain windows at the default domain_weight)
CALIBRATIONS = {"magnitude": ["none"], "wanda": ["domain", "mixed"], "sparsegpt": ["general", "domain", "mixed"],
                "dpruner-paper": ["general+domain"], "dpruner": ["general+domain"]}
#: BillSum items by default: greedy generation of 128 tokens is the slowest evaluation (see benchmarks/README.md)
BILLSUM_LIMIT = 50


def _tasks(domain: str, skip: tuple[str, ...] = ()) -> tuple[str, ...]:
    return tuple(t for t in GENERAL_TASKS + DOMAIN_TASKS[domain] if t not in skip)


def _task_texts(task: str) -> list[str]:
    """Every text an item of `task` shows the model (contexts and answers), for the overlap check."""
    from optimum_dpruner.evaluation import load_task_records

    fields = {"pubmedqa": lambda r: " ".join(r["contexts"]) + " " + r["question"], "casehold": lambda r: r["citing_prompt"],
              "billsum": lambda r: r["source"], "billsum_next": lambda r: r["source"],
              "pubmed_title": lambda r: r["title"] + " " + r["abstract"], "wiki_next": lambda r: r["text"]}[task]
    return [fields(r) for r in load_task_records(task)]


def check_overlap(domain: str) -> dict:
    """Overlap of every evaluation text of `domain`'s table with the texts its calibration sets draw from."""
    from optimum_dpruner.data.calibration import iter_texts, load_texts
    from optimum_dpruner.evaluation.overlap import ngram_overlap

    calibration = [t for name in ("general", domain) for t in iter_texts(load_texts(f"builtin:{name}", split="train"))]
    evaluations = {f"builtin:{name} (test)": list(iter_texts(load_texts(f"builtin:{name}", split="test"))) for name in ("general", domain)}
    evaluations.update({task: _task_texts(task) for task in _tasks(domain)})
    out = {}
    for name, texts in evaluations.items():
        report = ngram_overlap(calibration, texts)
        out[name] = {"documents": report.documents, "sharing_a_13_word_span": report.documents_sharing_a_span,
                     "max_fraction": round(report.max_fraction, 4), "near_duplicates": len(report.near_duplicates)}
        if not report.clean:
            raise SystemExit(f"{name}: {len(report.near_duplicates)} evaluation documents are near-duplicates of calibration "
                             f"text (>= {report.threshold:.0%} of their 13-word spans); fix the data split first.")
    return out


def _run_peer(args: argparse.Namespace, pruner, method: str, pattern: str, calibration: str) -> dict:
    """Prune with llm-compressor in its own environment on our calibration windows; load the result into `pruner.model`."""
    from peer import prune_in_peer_venv

    from optimum_dpruner import DPrunerConfig
    from optimum_dpruner.data.calibration import calibration_samples

    defaults = DPrunerConfig(**(json.loads(args.config_json) if args.config_json else {}))
    windows = calibration_samples(f"builtin:{calibration}", pruner.tokenizer, defaults.num_samples, defaults.seq_len, args.seed)
    peer = prune_in_peer_venv(pruner.model, windows, method, pattern, args.peer_python, args.threads)
    return {"prune_seconds": peer["prune_seconds"], "own_seconds": peer["prune_seconds"], "peak_rss_mib": peer["peak_rss_mib"],
            "sparsity": peer["sparsity"], "llmcompressor": peer["llmcompressor"], "calibration_windows": len(windows)}


def _single(args: argparse.Namespace) -> dict:
    import torch

    from optimum_dpruner import DPruner, DPrunerConfig
    from optimum_dpruner.methods import reconstructs

    torch.set_num_threads(args.threads)
    domain, method, pattern, calibration = args.single.split("/")
    overrides = json.loads(args.config_json) if args.config_json else {}
    row: dict = {"run": args.single, "domain": domain, "method": method, "pattern": pattern, "calibration": calibration}
    if method == "dense":
        pruner = DPruner.from_pretrained(config=DPrunerConfig(method="magnitude"))
        row.update(prune_seconds=0.0, own_seconds=0.0, peak_rss_mib=None, sparsity=0.0)
    elif method.startswith(PEER_PREFIX):
        pruner = DPruner.from_pretrained(config=DPrunerConfig(method="magnitude"))
        row.update(_run_peer(args, pruner, method[len(PEER_PREFIX):], pattern, domain if calibration == "domain" else "general"))
    else:
        common = dict(pattern=pattern, seed=args.seed, add_bos=args.add_bos, **overrides)
        if method == "sparsegpt" and calibration == "mixed" and args.mixcal_weight is not None:
            common["domain_weight"] = args.mixcal_weight
        config = DPrunerConfig.paper(**common) if method == "dpruner-paper" else DPrunerConfig(method=method, **common)
        pruner = DPruner.from_pretrained(config=config)
        both = ("builtin:general", f"builtin:{domain}")
        if config.method == "dpruner":
            scores = os.path.join(args.scores_dir, f"{domain}-{method}.safetensors") if args.scores_dir else ""
            reuse = bool(scores) and os.path.exists(scores)
            # saved scores need no data, except for the reconstruction pass of the default recipe
            data = () if reuse and not reconstructs(config) else both
            result = pruner.prune(*data, importance=scores if reuse else None, progress=False)
            row["scores"] = "reused" if reuse else "computed"
            if scores and not reuse:
                result.save_importance(scores)
        elif calibration == "mixed":
            result = pruner.prune(*both, progress=False)
            row["domain_weight"] = config.domain_weight
        else:
            result = pruner.prune(f"builtin:{domain}" if calibration == "domain" else "builtin:general", progress=False)
        report = result.report
        own = round(sum(report.stage_seconds.values()), 1)
        if row.get("scores") == "computed":  # what a reusing row did not have to do again
            row["scores_seconds"] = round(sum(v for k, v in report.stage_seconds.items()
                                              if k in ("calibration_data", "general_importance", "domain_importance")), 1)
        row.update(
            prune_seconds=own,
            own_seconds=own,
            stage_seconds={k: round(v, 1) for k, v in report.stage_seconds.items()},
            peak_rss_mib=round(max(report.peak_rss_bytes.values()) / 2**20),
            sparsity=round(report.sparsity, 4),
            regulariser_ratio_mean=report.extra.get("regulariser_ratio_mean"),
            config=config.to_dict(),
        )
    row.update(evaluate_row(pruner.model, pruner.tokenizer, domain, args))
    return row


def evaluate_row(model, tokenizer, domain: str, args: argparse.Namespace) -> dict:
    """Perplexities and tasks of one model, with intervals, per-window and per-item data, and seconds (wall and CPU)."""
    from optimum_dpruner import evaluate_task
    from optimum_dpruner.evaluation import evaluate_perplexity

    row: dict = {}
    for name, source in {"general_ppl": "builtin:general", "domain_ppl": f"builtin:{domain}"}.items():
        wall, cpu = time.time(), time.process_time()
        result = evaluate_perplexity(model, tokenizer, source, window=512, limit=args.eval_windows, spread=True, progress=False,
                                     add_bos=args.add_bos)
        row.update({name: round(result.perplexity, 3), f"{name}_low": round(result.low, 3), f"{name}_high": round(result.high, 3),
                    f"{name}_windows": {"nll": [round(x, 4) for x in result.window_nll], "tokens": result.window_tokens},
                    f"{name}_seconds": {"wall": round(time.time() - wall, 1), "cpu": round(time.process_time() - cpu, 1)}})
    for task in _tasks(domain, tuple(args.skip_tasks)):
        limit = args.billsum_limit if task == "billsum" else args.task_limit
        wall, cpu = time.time(), time.process_time()
        result = evaluate_task(model, tokenizer, task, limit=limit, seed=args.seed, progress=False)
        row[task] = {"items": result.num_items, "seconds": round(time.time() - wall, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
                     **{k: round(v, 4) for k, v in result.metrics.items()}, "per_item": result.per_item()}
    row["eval_windows"] = args.eval_windows
    return row


def _paired(row: dict, reference: dict, key: str, metric: str | None):
    """Paired bootstrap of `row` against `reference` on one perplexity set (`metric` None) or task metric; None if not stored."""
    from optimum_dpruner.evaluation import paired_bootstrap, perplexity_statistic, task_statistics

    if metric is None:
        a, b = row.get(f"{key}_windows"), reference.get(f"{key}_windows")
        if not a or not b or a["tokens"] != b["tokens"]:
            return None
        return paired_bootstrap(perplexity_statistic(a["nll"], a["tokens"]), perplexity_statistic(b["nll"], b["tokens"]),
                                len(a["tokens"]), relative=True)
    if key not in row or key not in reference:  # e.g. a reference row made with --skip-tasks
        return None
    a, b = row[key].get("per_item"), reference[key].get("per_item")
    if not a or not b or a.get("references") != b.get("references") or len(next(iter(a.values()))) != len(next(iter(b.values()))):
        return None
    n = len(next(iter(a.values())))
    return paired_bootstrap(task_statistics(key, a)[metric], task_statistics(key, b)[metric], n)


def _cell(values: dict, name: str, digits: int, paired) -> str:
    text = f"{values[name]:.{digits}f}"
    if f"{name}_low" in values:
        text += f" [{values[name + '_low']:.{digits}f}, {values[name + '_high']:.{digits}f}]"
    return text + ("*" if paired is not None and paired.significant else "")


def _discrimination() -> dict:
    """The committed discrimination test (`benchmarks/discrimination.py`): which task metrics tell models apart."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import discrimination

    return discrimination.load()


def _shown(rows: list[dict], domain: str) -> list[tuple[str, str]]:
    """The (task, metric) columns of `domain`'s table."""
    return [(task, metric) for task in _tasks(domain) for metric in TASK_METRICS[task] if any(task in r for r in rows)]


def _table(rows: list[dict], domain: str, reference: str = "dense/-/-", discrimination: dict | None = None) -> str:
    """`domain`'s table; a task metric that does not discriminate at this size (`discrimination`, default the
    committed test) is marked † in its head."""
    tasks = _tasks(domain)
    table = _discrimination() if discrimination is None else discrimination
    metric_heads = [f"{task} {metric}" + ("" if table.get((domain, task, metric), {}).get("discriminates", True) else " †")
                    for task, metric in _shown(rows, domain)]
    domain_ppl = {"medical": "PubMed", "legal": "US legislation"}[domain]
    head = ["method", "pattern", "calibration", "Wikipedia ppl", f"{domain_ppl} ppl", *metric_heads, "prune s", "peak RSS MiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ref = next((r for r in rows if r["domain"] == domain and r["run"] == f"{domain}/{reference}"), None)
    for r in rows:
        if r["domain"] != domain:
            continue
        against = ref if ref is not None and r is not ref else None
        cells = [r["method"], r["pattern"], r["calibration"] + (" (scores reused)" if r.get("scores") == "reused" else "")]
        cells += [_cell(r, key, 2, against and _paired(r, against, key, None)) for key in PERPLEXITY_SETS]
        cells += [_cell(r[task], metric, 3, against and _paired(r, against, task, metric)) if task in r else "-"
                  for task in tasks for metric in TASK_METRICS[task] if any(task in x for x in rows)]
        cells += [f"{r['prune_seconds']:.0f}", str(r["peak_rss_mib"]) if r["peak_rss_mib"] is not None else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_tables(path: str, data: dict, domains: list[str], reference: str) -> None:
    """The markdown file next to the JSON: protocol line, then one table per domain."""
    rows, command = data["rows"], data["command"]
    windows = sorted({r.get("eval_windows") for r in rows}, key=str)
    windows_text = "all" if windows == [None] else "/".join(str(w) for w in windows)
    items = {t: {r[t]["items"] for r in rows if t in r} for d in domains for t in _tasks(d)}
    sizes = ", ".join(f"{t} {'/'.join(map(str, sorted(n)))}" for t, n in items.items() if n)
    with open(os.path.splitext(path)[0] + ".md", "w") as f:
        # each row records its threads; files written before that hold one value for all rows
        threads = ", ".join(str(t) for t in sorted({r.get("threads", data.get("threads", os.cpu_count())) for r in data["rows"]}))
        f.write(f"Command: `{command}`\n\nDate: {data['date']}, torch threads: {threads}, fp32, SmolLM2-135M-Instruct, 50% "
                f"sparsity; perplexity on {windows_text} 512-token test windows; items: "
                f"{sizes} (seed {data.get('seed', 0)}). Brackets: 95% percentile bootstrap interval over windows / items; "
                f"`*`: the paired bootstrap difference from the {reference} row excludes 0 at 95%.\n")
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import discrimination

        table = discrimination.load()
        for name in domains:
            if any(r["domain"] == name for r in rows):
                note = discrimination.footnote(table, name, [c for c in _shown(rows, name) if (name, *c) in table])
                f.write(f"\n### {name}\n\n" + _table(rows, name, reference, table) + (f"\n{note}" if note else ""))


def _summary(row: dict) -> dict:
    """A row without its configuration and per-window / per-item data (the progress line)."""
    out = {k: v for k, v in row.items() if k not in ("config", "stage_seconds") and not k.endswith("_windows")}
    return {k: ({m: x for m, x in v.items() if m != "per_item"} if isinstance(v, dict) else v) for k, v in out.items()}


# flags that choose which rows run (or how fast), or where results go, not what a row measures
_ROW_FLAGS = ("threads", "domains", "methods", "patterns", "resume", "out", "tables_only", "reference", "single")


def _protocol(command: str) -> dict | None:
    """What every row of a file must share to be compared: the parsed flags of `command` (defaults filled in, so
    `--mixcal-weight 0.75` spelled out or left to its default reads the same) less `_ROW_FLAGS`; `None` when the
    command does not parse (e.g. two commands joined by hand)."""
    words = shlex.split(command)
    start = next((i + 1 for i, w in enumerate(words) if w.endswith("compare.py")), None)
    if start is None:
        return None
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # argparse's usage text is not the error here
            args, unknown = _parser().parse_known_args(words[start:])
    except SystemExit:
        return None
    return None if unknown else {k: v for k, v in vars(args).items() if k not in _ROW_FLAGS}


def _resumed_command(previous: dict, command: str, runs: list[str]) -> str:
    """The command a resumed file records: `command`, if it measures like the file's and asks for every row the file
    holds (so that it alone re-makes the whole file); otherwise a SystemExit that says which."""
    before, now = _protocol(previous["command"]), _protocol(command)
    if now is None:
        raise SystemExit(f"--resume: {command!r} cannot be read as one compare.py command.")
    if before is None:
        raise SystemExit(f"--resume: {previous['command']!r} wrote that file and cannot be read as one compare.py "
                         "command; drop --resume.")
    differ = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    if differ:
        raise SystemExit(f"--resume: {previous['command']!r} wrote that file, with another protocol "
                         f"({', '.join('--' + k.replace('_', '-') for k in differ)}); drop --resume.")
    missing = sorted({r["run"] for r in previous["rows"]} - set(runs))
    if missing:
        raise SystemExit(f"--resume: the file has rows this command does not ask for ({', '.join(missing)}); "
                         "add their domains, methods and patterns.")
    return command


def _runs(args: argparse.Namespace, domain: str) -> list[str]:
    runs = [] if args.skip_dense else [f"{domain}/dense/-/-"]
    for method in args.methods:
        for pattern in args.patterns:
            calibrations = CALIBRATIONS.get(method, ["general"])
            if method == "wanda" and args.with_wanda_general:
                calibrations = ["general", *calibrations]
            if method.startswith(PEER_PREFIX):
                calibrations = args.peer_calibration
            runs += [f"{domain}/{method}/{pattern}/{c}" for c in calibrations]
    return runs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", nargs="+", default=["medical", "legal"], choices=sorted(DOMAIN_TASKS))
    parser.add_argument("--methods", nargs="+", default=["magnitude", "wanda", "sparsegpt", "dpruner-paper", "dpruner"],
                        help="methods (rows per method: CALIBRATIONS); llmcompressor-<name> runs the peer (needs --peer-python)")
    parser.add_argument("--with-wanda-general", action="store_true", help="also Wanda calibrated on general text")
    parser.add_argument("--add-bos", type=auto_or_bool, default="auto",
                        help="start calibration and perplexity windows with the BOS token: auto (default), true, false")
    parser.add_argument("--peer-python", default=os.path.join(".peer-venv", "bin", "python"),
                        help="python of llm-compressor's virtual environment (make peer-venv)")
    parser.add_argument("--peer-calibration", nargs="+", default=["general"], choices=["general", "domain"],
                        help="calibration sets of the peer runs (default: general)")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in --out and run only the missing ones")
    parser.add_argument("--patterns", nargs="+", default=["unstructured", "2:4"])
    parser.add_argument("--eval-windows", type=int, default=None,
                        help="512-token perplexity windows per set, evenly spread over it (default: all)")
    parser.add_argument("--task-limit", type=int, default=None, help="items per multiple-choice task (seeded subset; default: all)")
    parser.add_argument("--billsum-limit", type=int, default=BILLSUM_LIMIT,
                        help=f"BillSum items (greedy generation, the slowest task; default {BILLSUM_LIMIT})")
    parser.add_argument("--skip-dense", action="store_true",
                        help="no dense row (rows to be joined with another file of the same protocol that has it)")
    parser.add_argument("--skip-tasks", nargs="*", default=[], help="tasks not to run (e.g. billsum, to save time)")
    parser.add_argument("--mixcal-weight", type=float, default=None,
                        help="domain_weight of the SparseGPT 'mixed' rows (MixCal at its validated beta; default: the library's)")
    parser.add_argument("--reference", default="dense/-/-", help="method/pattern/calibration of the row the table's * compares with")
    parser.add_argument("--tables-only", action="store_true", help="rewrite the markdown table from --out; run nothing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--config-json", default="", help="extra DPrunerConfig fields as JSON, for every run")
    parser.add_argument("--scores-dir", default=os.path.join("outputs", "compare-scores"),
                        help="where the D-Pruner unstructured run saves G and I for the 2:4 run ('' to recompute)")
    parser.add_argument("--out", default="benchmarks/results/compare.json")
    parser.add_argument("--single", help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = _parser().parse_args()
    if args.single:
        print(json.dumps(_single(args)))
        return
    if args.tables_only:
        with open(args.out) as f:
            data = json.load(f)
        _write_tables(args.out, data, args.domains, args.reference)
        return
    command = "python " + shlex.join(a for a in sys.argv if a != "--resume")
    if any(m.startswith(PEER_PREFIX) for m in args.methods) and not os.path.exists(args.peer_python):
        raise SystemExit(f"--peer-python {args.peer_python} does not exist; run `make peer-venv` or drop the llmcompressor-* methods.")
    rows: list[dict] = []
    runs = [run for domain in args.domains for run in _runs(args, domain)]
    if args.resume and os.path.exists(args.out):
        with open(args.out) as f:
            previous = json.load(f)
        command = _resumed_command(previous, command, runs)
        rows = previous["rows"]  # each row records its own threads
        for row in rows:
            row.setdefault("threads", previous.get("threads"))
    done = {r["run"] for r in rows}
    scores_seconds = {(r["domain"], r["method"]): r["scores_seconds"] for r in rows if r.get("scores") == "computed"}
    if args.scores_dir:
        os.makedirs(args.scores_dir, exist_ok=True)
        for domain in args.domains:  # scores of an earlier invocation (other defaults, perhaps) are never reused
            for method in ("dpruner", "dpruner-paper"):
                stale = os.path.join(args.scores_dir, f"{domain}-{method}.safetensors")
                if os.path.exists(stale) and f"{domain}/{method}/unstructured/general+domain" not in done:
                    os.remove(stale)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    overlap = {domain: check_overlap(domain) for domain in args.domains}
    print(json.dumps({"overlap": overlap}), flush=True)
    order = {run: i for i, run in enumerate(runs)}
    for domain in args.domains:
        for run in _runs(args, domain):
            if run in done:
                continue
            start = time.time()
            child = [sys.executable, __file__, "--single", run, "--seed", str(args.seed), "--threads", str(args.threads),
                     "--config-json", args.config_json, "--scores-dir", args.scores_dir, "--peer-python", args.peer_python,
                     "--add-bos", str(args.add_bos).lower()]
            for flag, value in (("--eval-windows", args.eval_windows), ("--task-limit", args.task_limit),
                                ("--billsum-limit", args.billsum_limit), ("--mixcal-weight", args.mixcal_weight)):
                child += [flag, str(value)] if value is not None else []
            child += ["--skip-tasks", *args.skip_tasks] if args.skip_tasks else []
            proc = subprocess.run(child, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"run {run} failed:\n{proc.stderr[-4000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            if row.get("scores") == "computed":
                scores_seconds[(domain, row["method"])] = row["scores_seconds"]
            elif row.get("scores") == "reused":
                row["prune_seconds"] = round(row["own_seconds"] + scores_seconds.get((domain, row["method"]), 0.0), 1)
            row["wall_seconds"] = round(time.time() - start, 1)
            row["threads"] = args.threads
            rows.append(row)
            rows.sort(key=lambda r: order.get(r["run"], len(order)))  # rows added by --resume keep the table's order
            print(json.dumps(_summary(row)), flush=True)
            data = {"command": command, "date": time.strftime("%Y-%m-%d", time.gmtime()), "seed": args.seed, "overlap": overlap,
                    "rows": rows}
            with open(args.out, "w") as f:
                json.dump(data, f, indent=1)
            _write_tables(args.out, data, args.domains, args.reference)

if __name__ == "__main__":
    main()
