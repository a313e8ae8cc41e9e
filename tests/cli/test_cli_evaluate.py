"""`optimum-cli dpruner evaluate` as a user runs it: intervals in --json and the tables, the new tasks, position limits,
greedy continuations of prompts beside a reference model's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from optimum_dpruner.cli.evaluate import RESAMPLING_UNITS, TASK_NAMES

from .test_cli import last_line, model_dir, optimum_cli, pruned_dir, run_cli  # noqa: F401  (fixtures)


@pytest.fixture
def short_gpt2_dir(tokenizer, tmp_path) -> Path:
    """A tiny random GPT-2 with 64 positions, saved with the SmolLM2 tokenizer."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_positions=64, n_embd=64, n_layer=2, n_head=4, vocab_size=len(tokenizer), bos_token_id=None, eos_token_id=None)
    path = tmp_path / "gpt2-64"
    GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_task_names_and_resampling_units_are_the_library_s():
    from optimum_dpruner import evaluation
    from optimum_dpruner.cli import samples

    assert TASK_NAMES == tuple(evaluation.TASKS) and RESAMPLING_UNITS == evaluation.RESAMPLING_UNITS
    assert samples.DEFAULT_MAX_NEW_TOKENS == evaluation.generation.DEFAULT_MAX_NEW_TOKENS


def test_json_and_tables_carry_the_intervals(optimum_cli, pruned_dir, tokenizer):  # noqa: F811
    from transformers import AutoModelForCausalLM

    from optimum_dpruner.evaluation import evaluate_perplexity, evaluate_task, generate_samples

    proc = run_cli(optimum_cli, "dpruner", "evaluate", "-m", pruned_dir, "--dataset", "builtin:medical", "--window", "32",
                   "--limit", "3", "--task", "pubmed_title", "wiki_next", "--prompt", "The patient", "--max-new-tokens", "4",
                   "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    model = AutoModelForCausalLM.from_pretrained(pruned_dir)
    continuation = generate_samples(model, tokenizer, "The patient", max_new_tokens=4)
    assert [sample["continuation"] for sample in report["samples"]] == continuation
    expected = evaluate_perplexity(model, tokenizer, "builtin:medical", window=32, limit=3, progress=False)
    assert report["perplexity"]["builtin:medical"] == pytest.approx(expected.perplexity, rel=1e-4)
    interval = report["perplexity_intervals"]["builtin:medical"]
    assert (interval["low"], interval["high"]) == pytest.approx((expected.low, expected.high), rel=1e-4)
    assert (interval["windows"], interval["window"]) == (3, 32)
    assert interval["documents"] == 1 and "over windows" in report["interval"]  # 3 windows of 32 tokens: one abstract
    for task in ("pubmed_title", "wiki_next"):
        metrics = evaluate_task(model, tokenizer, task, limit=3, progress=False).metrics
        assert report["tasks"][task] == pytest.approx({"items": 3, **metrics})
        assert {"accuracy", "accuracy_low", "accuracy_high"} <= set(report["tasks"][task])
    table = run_cli(optimum_cli, "dpruner", "evaluate", "-m", pruned_dir, "--dataset", "builtin:legal", "--window", "32",
                    "--limit", "2", "--task", "billsum_title")
    assert table.returncode == 0, table.stderr[-3000:]
    assert "95% interval (windows)" in table.stdout and "billsum_title" in table.stdout and "accuracy" in table.stdout


def test_prompts_print_the_model_s_and_the_reference_s_continuations(optimum_cli, pruned_dir, model_dir, tokenizer,  # noqa: F811
                                                                     tmp_path):
    from transformers import AutoModelForCausalLM

    from optimum_dpruner.evaluation import generate_samples

    prompts, out = ["The patient was admitted with", "The court held that"], tmp_path / "samples.json"
    proc = run_cli(optimum_cli, "dpruner", "evaluate", "-m", pruned_dir, "--prompt", prompts[0], "--prompt", prompts[1],
                   "--reference", model_dir, "--max-new-tokens", "6", "--output", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pruned = generate_samples(AutoModelForCausalLM.from_pretrained(pruned_dir), tokenizer, prompts, max_new_tokens=6)
    dense = generate_samples(AutoModelForCausalLM.from_pretrained(model_dir), tokenizer, prompts, max_new_tokens=6)
    assert pruned != dense  # half the weights gone: the continuations part
    for prompt, mine, theirs in zip(prompts, pruned, dense):
        assert f"prompt: {prompt}\nmodel ({pruned_dir}): {mine}\nreference ({model_dir}): {theirs}\n" in proc.stdout
    report = json.loads(out.read_text())
    assert report["samples"] == [{"prompt": p, "max_new_tokens": 6, "continuation": m, "reference_continuation": r}
                                 for p, m, r in zip(prompts, pruned, dense)]
    assert report["reference"] == str(model_dir) and report["perplexity"] == {} and report["tasks"] == {}
    assert "perplexity" not in proc.stderr  # --prompt alone runs no perplexity


def test_perplexity_intervals_can_resample_documents(optimum_cli, pruned_dir, tokenizer, tmp_path):  # noqa: F811
    from transformers import AutoModelForCausalLM

    from optimum_dpruner.errors import DPrunerWarning
    from optimum_dpruner.evaluation import evaluate_perplexity

    texts = tmp_path / "six.jsonl"  # six documents of ~40 tokens: 32-token windows fall in five or six of them
    texts.write_text("".join(json.dumps({"text": " ".join(f"word{k} of note {d}." for k in range(8))}) + "\n" for d in range(6)))
    proc = run_cli(optimum_cli, "dpruner", "evaluate", "-m", pruned_dir, "--dataset", str(texts), "--window", "32",
                   "--resample-by", "documents", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    interval = report["perplexity_intervals"][str(texts)]
    with pytest.warns(DPrunerWarning, match="the windows come from 6 documents"):
        expected = evaluate_perplexity(AutoModelForCausalLM.from_pretrained(pruned_dir), tokenizer, str(texts), window=32,
                                       progress=False, resample_by="documents")
    assert interval["documents"] >= 5 and "over documents" in report["interval"]
    assert interval["low"] < report["perplexity"][str(texts)] < interval["high"]
    assert (interval["low"], interval["high"]) == pytest.approx((expected.low, expected.high), rel=1e-4)
    one = run_cli(optimum_cli, "dpruner", "evaluate", "-m", pruned_dir, "--dataset", "builtin:general", "--window", "32",
                  "--limit", "2", "--resample-by", "documents")
    assert one.returncode != 0 and "the windows come from 1 document; resample_by='documents' needs at least 2" in one.stderr
    assert "Traceback" not in one.stderr


def test_a_model_with_64_positions_is_evaluated_within_them(optimum_cli, short_gpt2_dir):
    proc = run_cli(optimum_cli, "dpruner", "evaluate", "-m", short_gpt2_dir, "--dataset", "builtin:general", "--limit", "2",
                   "--task", "billsum", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["window"] == 64 and report["perplexity_intervals"]["builtin:general"]["window"] == 64
    assert report["tasks"]["billsum"]["items"] == 2


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["--dataset", "builtin:general", "--window", "128"], 2, "--window=128 exceeds the model's 64 positions; pass --window=64 or less."),
        (["--task", "billsum", "--limit", "1", "--max-new-tokens", "40"], 1, "--max-new-tokens=40; raise max_length"),
    ],
    ids=["window-past-positions", "billsum-does-not-fit"],
)
def test_lengths_past_the_model_s_positions_are_one_line_errors(optimum_cli, short_gpt2_dir, args, code, message):
    proc = run_cli(optimum_cli, "dpruner", "evaluate", "-m", short_gpt2_dir, *args)
    assert proc.returncode == code, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    error = last_line(proc.stderr)
    assert error.startswith("optimum-cli dpruner evaluate: error: ") and message in error, proc.stderr[-2000:]


def test_library_names_become_flags_but_values_and_urls_stay_as_they_are():
    from optimum_dpruner.cli.exits import flagify

    flags = {"seed": "--seed", "text_column": "--text-column", "general_ds": "--general-dataset"}
    message = "general_ds='data?seed=3&text_column=a' is empty; seed=3, see https://host/x?seed=4 or x=\"seed=5\""
    assert flagify(message, flags) == (
        "--general-dataset='data?seed=3&text_column=a' is empty; --seed=3, see https://host/x?seed=4 or x=\"seed=5\""
    )
