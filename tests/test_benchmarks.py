"""The benchmark scripts' own logic: compare.py's interval table and paired marks, plot_tradeoff.py's Pareto front,
the discrimination test and the verdicts that count only what it passes."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(method: str, nll_scale: float, correct: list[bool]) -> dict:
    """A compare.py row with per-window and per-item data: NLL `nll_scale` per token, these right answers."""
    tokens = [511] * 40
    nll = [nll_scale * t + (k % 5) for k, t in enumerate(tokens)]  # a little spread between windows
    row = {"run": f"medical/{method}", "domain": "medical", "method": method.split("/")[0], "pattern": "unstructured",
           "calibration": "general", "prune_seconds": 1.0, "peak_rss_mib": 100}
    for key in ("general_ppl", "domain_ppl"):
        row.update({key: 2.0, f"{key}_low": 1.9, f"{key}_high": 2.1, f"{key}_windows": {"nll": nll, "tokens": tokens}})
    labels = [k % 4 for k in range(len(correct))]
    predictions = [label if ok else (label + 1) % 4 for label, ok in zip(labels, correct)]
    for task in ("wiki_next", "pubmed_title"):
        row[task] = {"items": len(correct), "accuracy": sum(correct) / len(correct), "accuracy_low": 0.0, "accuracy_high": 1.0,
                     "per_item": {"predictions": predictions, "references": labels}}
    return row


def test_compare_table_marks_what_differs_from_the_reference_row():
    compare = _load("compare")
    right = [k % 10 < 8 for k in range(200)]
    dense = _row("dense/-/-", 2.0, right)
    same = _row("wanda/unstructured/general", 2.0, right)
    worse = _row("magnitude/unstructured/none", 2.5, [ok and k % 3 != 0 for k, ok in enumerate(right)])
    table = compare._table([dense, same, worse], "medical").splitlines()
    dense_line, same_line, worse_line = table[2:5]
    assert "*" not in dense_line and "*" not in same_line  # the reference itself, and a row equal to it
    assert worse_line.count("*") == 4  # both perplexities and both task accuracies differ
    assert "[1.90, 2.10]" in same_line  # the stored intervals are shown
    # rows from before intervals were stored still make a table, without brackets or marks
    old = {k: v for k, v in worse.items() if not k.endswith(("_low", "_high", "_windows"))}
    old.update({t: {"items": 200, "accuracy": 0.5} for t in ("wiki_next", "pubmed_title")})
    line = compare._table([dense, old], "medical").splitlines()[3]
    assert "*" not in line and "[" not in line
    # a reference row without a task another row has: that cell is shown, unmarked
    bare = {k: v for k, v in dense.items() if k != "pubmed_title"}
    line = compare._table([bare, worse], "medical").splitlines()[3]
    assert line.count("*") == 3 and "| 0.5" in line


def test_pareto_front_keeps_the_points_nothing_beats_on_both_axes():
    plot = _load("plot_tradeoff")
    points = [(30, 60), (29, 61), (36, 51), (41, 55), (35, 59), (290, 577)]
    assert plot.pareto_front(points) == [1, 0, 4, 2]  # by increasing x; (41, 55) and (290, 577) are beaten by (36, 51)


def test_a_method_keeps_its_colour_whichever_rows_a_figure_holds():
    plot = _load("plot_tradeoff")
    everything = plot.colour_slots(["dense", "dpruner", "dpruner-paper", "sparsegpt", "wanda", "llmcompressor-sparsegpt"])
    assert plot.colour_slots(["dense", "sparsegpt", "dpruner"])["sparsegpt"] == everything["sparsegpt"]
    assert len(set(everything.values())) == len(everything)  # a colour each


def _judged_row(method, calibration, general, domain, correct=None, domain_name="medical"):
    """A compare.py row whose domain-perplexity windows put its perplexity at `domain`."""
    correct = correct if correct is not None else [k % 10 < 8 for k in range(200)]
    r = _row(f"{method}/unstructured/{calibration}", domain, correct)
    r.update(method=method, calibration=calibration, general_ppl=general, domain_ppl=domain, domain=domain_name)
    r["domain_ppl_windows"] = {"nll": [math.log(domain) * 511 + (k % 5) / 10 for k in range(40)], "tokens": [511] * 40}
    return r


def test_verdict_holds_only_when_the_candidate_beats_every_baseline_on_the_domain():
    verdict = _load("verdict")
    right = [k % 10 < 8 for k in range(200)]
    baselines = [_judged_row("sparsegpt", "domain", 40.0, 2.5), _judged_row("wanda", "domain", 38.0, 2.6),
                 _judged_row("sparsegpt", "general", 45.0, 3.0)]
    good = _judged_row("dpruner", "general+domain", 39.0, 2.0)
    text, failures, missing = verdict.verdict([good, *baselines], "medical", "unstructured", "dpruner/general+domain",
                                              ["sparsegpt/domain", "wanda/domain"], 1.05)
    # domain ppl 2.0 against 2.5, paired windows
    assert "**Holds**" in text and "-20.0%" in text and failures == [] and missing == []
    # a baseline not measured yet: no failure so far, and the verdict says it is not final
    text, failures, missing = verdict.verdict([good, *baselines], "medical", "unstructured", "dpruner/general+domain",
                                              ["sparsegpt/domain", "wanda/domain", "sparsegpt/mixed"], 1.05)
    assert "**Holds so far**" in text and "Rows not measured yet: sparsegpt/mixed." in text
    assert missing == ["sparsegpt/mixed"]
    # nor without SparseGPT on general text, which may hold the best general perplexity
    missing = verdict.verdict([good, *baselines[:2]], "medical", "unstructured", "dpruner/general+domain",
                              ["sparsegpt/domain", "wanda/domain"], 1.05)[2]
    assert missing == ["sparsegpt/general"]
    # a worse domain perplexity, a general one past the slack, and a task clearly lost: each is named
    bad = _judged_row("dpruner", "general+domain", 41.0, 2.55, [ok and k % 2 == 0 for k, ok in enumerate(right)])
    text, failures, _ = verdict.verdict([bad, *baselines], "medical", "unstructured", "dpruner/general+domain",
                                        ["sparsegpt/domain", "wanda/domain"], 1.05)
    assert "**Does not hold**" in text and len(failures) == 4  # domain vs sparsegpt, general, the task vs both
    assert "not below sparsegpt/domain's 2.50" in text and "1.079x the best baseline's 38.00 (wanda/domain)" in text
    assert "pubmed_title accuracy below wanda/domain's beyond the interval" in text


def test_plot_titles_each_panel_with_the_verdict_of_its_rows():
    def baselines(domain):
        return [_judged_row("sparsegpt", "domain", 40.0, 2.5, domain_name=domain),
                _judged_row("wanda", "domain", 38.0, 2.6, domain_name=domain)]

    rows = [_judged_row("dpruner", "general+domain", 39.0, 2.0), *baselines("medical"),
            _judged_row("dpruner", "general+domain", 39.0, 2.55, domain_name="legal"), *baselines("legal"),
            *baselines("other")]  # no candidate row there: no verdict
    found = _load("plot_tradeoff").criteria(rows)
    # the default baselines include the mixed-calibration rows and SparseGPT on general text, which these panels lack
    assert found == {("medical", "unstructured"): "holds so far", ("legal", "unstructured"): "does not hold"}
    rest = (("sparsegpt", "mixed"), ("wanda", "mixed"), ("sparsegpt", "general"))
    mixed = [_judged_row(m, c, 40.0, 2.5, domain_name="medical") for m, c in rest]
    assert _load("plot_tradeoff").criteria(rows + mixed)[("medical", "unstructured")] == "holds"


def test_trivial_answers_are_the_best_score_without_reading_the_item():
    discrimination = _load("discrimination")
    answers = {"references": ["yes"] * 6 + ["no"] * 3 + ["maybe"]}
    assert discrimination.trivial("pubmedqa", "accuracy", answers) == ('always "yes"', 0.6)
    assert discrimination.trivial("pubmedqa", "macro_f1", answers) == ("chance", 1 / 3)
    assert discrimination.trivial("pubmed_title", "accuracy", {"references": [0, 1, 2, 3]}) == ("chance", 0.25)
    assert discrimination.trivial("billsum", "rouge1", {"rouge1": [0.3]}) is None  # a summary must be written


def test_a_task_discriminates_only_above_the_trivial_answer_and_a_damaged_model():
    discrimination = _load("discrimination")
    right = [k % 10 < 8 for k in range(200)]
    dense = _row("dense/-/-", 2.0, right)
    dense["pubmed_title"].update(accuracy_low=0.74, accuracy_high=0.86)
    damaged = _judged_row("wanda", "domain", 90.0, 9.0, [ok and k % 2 == 0 for k, ok in enumerate(right)])
    mild = _judged_row("sparsegpt", "domain", 40.0, 3.0, right)
    [entry] = [e for e in discrimination.judge([dense, mild, damaged], "medical") if e["task"] == "pubmed_title"]
    assert entry["damaged"] == "wanda/domain" and entry["discriminates"]  # the highest domain perplexity is the damaged one
    # a model that scores like dense on it: not discriminating, and the verdict does not count it
    [entry] = [e for e in discrimination.judge([dense, _judged_row("wanda", "domain", 90.0, 9.0, right)], "medical")
               if e["task"] == "pubmed_title"]
    assert not entry["above_damaged"] and not entry["discriminates"]
    table = {("medical", "pubmed_title", "accuracy"): entry}
    verdict = _load("verdict")
    baselines = [_judged_row("sparsegpt", "domain", 40.0, 2.5), _judged_row("wanda", "domain", 38.0, 2.6),
                 _judged_row("sparsegpt", "general", 45.0, 3.0)]
    worse_task = _judged_row("dpruner", "general+domain", 39.0, 2.0, [ok and k % 2 == 0 for k, ok in enumerate(right)])
    text, failures, _ = verdict.verdict([worse_task, *baselines], "medical", "unstructured", "dpruner/general+domain",
                                        ["sparsegpt/domain", "wanda/domain"], 1.05, table)
    assert failures == [] and "**Holds**" in text and "pubmed_title accuracy: candidate - baseline †" in text
    assert "† not discriminating at 135M" in text and "Judged on general and domain perplexity: **Holds**" in text
    assert verdict.counted([worse_task], "medical", "unstructured", table=table) == []


def test_compare_resumes_a_command_that_asks_for_more_rows_measured_the_same_way():
    compare = _load("compare")
    first = "python benchmarks/compare.py --domains medical --patterns unstructured --methods dpruner --threads 1 --out x.json"
    previous = {"command": first, "rows": [{"run": "medical/dense/-/-"}, {"run": "medical/dpruner/unstructured/general+domain"}]}
    more = first.replace("--patterns unstructured --methods dpruner --threads 1",
                         "--patterns unstructured 2:4 --methods wanda dpruner --threads 2")
    runs = ["medical/dense/-/-", "medical/wanda/unstructured/domain", "medical/dpruner/unstructured/general+domain",
            "medical/dpruner/2:4/general+domain"]
    assert compare._resumed_command(previous, more, runs) == more
    with pytest.raises(SystemExit, match="another protocol \\(--eval-windows\\)"):
        compare._resumed_command(previous, more + " --eval-windows 32", runs)
    # a default spelled out measures the same; a file written by two commands joined by hand is not resumed
    assert compare._resumed_command(previous, more + " --billsum-limit 50 --seed 0", runs) == more + " --billsum-limit 50 --seed 0"
    with pytest.raises(SystemExit, match="wrote that file and cannot be read"):
        compare._resumed_command({**previous, "command": first + " + " + first}, more, runs)
    with pytest.raises(SystemExit, match="^--resume: 'python benchmarks/compare.py --no-such-flag' cannot be read"):
        compare._resumed_command(previous, "python benchmarks/compare.py --no-such-flag", runs)
    with pytest.raises(SystemExit, match="medical/dpruner/unstructured/general\\+domain"):
        compare._resumed_command(previous, first.replace("--methods dpruner", "--methods wanda"), runs[:2])
