"""`optimum-cli dpruner` run as a user runs it: a subprocess on the installed `optimum-cli`.

Every test runs against two installs: the editable one of this checkout (the virtualenv running pytest) and a
plain `pip install` of a copy of it into a separate virtualenv (marked `slow`: built once, by default in
`$TMPDIR/clivenv`, or where `DPRUNER_PLAIN_VENV` points; the package is reinstalled from the current sources
every session). Outputs are reloaded with plain transformers and their zeros counted.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from optimum_dpruner import DPruner, DPrunerConfig
from optimum_dpruner.cli.flags import CONFIG_FLAGS

REPO = Path(__file__).resolve().parents[2]
PLAIN_VENV = Path(os.environ.get("DPRUNER_PLAIN_VENV", Path(tempfile.gettempdir()) / "clivenv"))
TARGET_SUFFIXES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CALIBRATION = ["--num-samples", "2", "--seq-len", "32"]


# ----------------------------------------------------------------------------------------------- installs
def _copy_sources(dest: Path) -> Path:
    """The checkout without its virtualenv, git data and build outputs (what an sdist would hold, roughly)."""
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "outputs", "benchmarks"
    )
    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


def _pip(python: Path, *args: str) -> None:
    proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"pip install {' '.join(args)} failed:\n{proc.stderr[-3000:]}"


def _plain_install(tmp_path_factory) -> Path:
    python = PLAIN_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PLAIN_VENV)], check=True, timeout=300)
        _pip(python, "torch==2.13.0")  # the CPU build, as the README's set-up does
    source = _copy_sources(tmp_path_factory.mktemp("plain") / "optimum-dpruner")
    _pip(python, str(source))  # installs missing dependencies
    _pip(python, "--no-deps", "--force-reinstall", str(source))  # this session's sources, whatever was there
    return PLAIN_VENV / "bin" / "optimum-cli"


@pytest.fixture(scope="module", params=["editable", pytest.param("plain", marks=pytest.mark.slow)])
def optimum_cli(request, tmp_path_factory) -> Path:
    """Path of the `optimum-cli` script of the install under test."""
    if request.param == "editable":
        return Path(sys.executable).with_name("optimum-cli")
    return _plain_install(tmp_path_factory)


def run_cli(cli: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: int = 900):
    """Run `optimum-cli ARGS` offline, with `$OMP_NUM_THREADS` (default two) threads, in `cwd` (never the checkout)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_ENDPOINT", "PYTHONPATH"))}
    full_env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"), TOKENIZERS_PARALLELISM="false",
                    HF_HUB_DISABLE_TELEMETRY="1")
    if Path(cli).parent == Path(sys.executable).parent:  # the editable install: this checkout, wherever its finder points
        full_env["PYTHONPATH"] = str(REPO)
    full_env.update(env or {})
    return subprocess.run(
        [str(cli), *map(str, args)], capture_output=True, text=True, env=full_env, cwd=cwd or tempfile.gettempdir(), timeout=timeout
    )


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


# ----------------------------------------------------------------------------------------------- models
@pytest.fixture
def model_dir(make_tiny, tokenizer, tmp_path) -> Path:
    """A tiny random LLaMA with the SmolLM2 tokenizer, saved as a plain transformers folder."""
    path = tmp_path / "tiny"
    make_tiny("llama").save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def pruned_dir(make_tiny, tokenizer, tmp_path) -> Path:
    """A tiny LLaMA pruned to 50% by magnitude with the library, saved by `save_pretrained`."""
    result = DPruner(make_tiny("llama"), tokenizer, DPrunerConfig(method="magnitude", sparsity=0.5)).prune(progress=False)
    return Path(result.save_pretrained(tmp_path / "pruned"))


def target_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The target matrices of a saved model, reloaded with plain transformers."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    return {n: p.detach() for n, p in model.named_parameters() if n.endswith(tuple(f"{s}.weight" for s in TARGET_SUFFIXES))}


# ----------------------------------------------------------------------------------------------- registration
def test_optimum_cli_still_works(optimum_cli):
    root = run_cli(optimum_cli, "--help")
    assert root.returncode == 0, root.stderr
    assert all(name in root.stdout for name in ("export", "env", "dpruner"))
    assert root.stderr == ""  # the register module warned about nothing
    env = run_cli(optimum_cli, "env")
    assert env.returncode == 0, env.stderr
    assert "`optimum` version" in env.stdout
    export = run_cli(optimum_cli, "export", "--help")
    assert export.returncode == 0, export.stderr


@pytest.mark.parametrize("command", [["dpruner", "--help"], ["dpruner", "prune", "--help"], ["dpruner"]], ids=["group", "prune", "bare"])
def test_help_has_examples_and_does_not_import_torch(optimum_cli, command):
    proc = run_cli(optimum_cli, *command, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "examples:" in proc.stdout and "optimum-cli dpruner" in proc.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "optimum_dpruner.cli" in imported  # the command was really loaded...
    heavy = {m for m in imported if m.split(".")[0] in ("torch", "transformers", "datasets", "safetensors", "numpy")}
    assert not heavy, f"'optimum-cli {' '.join(command)}' imported {sorted(heavy)[:5]}"  # ...without torch
    if "prune" in command:
        assert all(flag in proc.stdout for flag in CONFIG_FLAGS.values())


def test_every_config_field_has_a_flag():
    """Each DPrunerConfig field is set by its flag (in-process parse; a new field without a value here fails)."""
    import argparse

    from optimum_dpruner.cli.flags import add_config_arguments, config_from_args

    values = {
        "method": ("sparsegpt", "sparsegpt"), "sparsity": ("0.25", 0.25), "pattern": ("unstructured", "unstructured"),
        "granularity": ("row", "row"), "block_size": ("64", 64), "targets": (["*.mlp.*", "*.q_proj"], ["*.mlp.*", "*.q_proj"]),
        "ignore": (["*.o_proj"], ["*.o_proj"]), "num_samples": ("3", 3), "seq_len": ("48", 48),
        "domain_num_samples": ("5", 5), "text_column": ("body", "body"), "seed": ("7", 7), "damp": ("0.05", 0.05),
        "general_importance": ("obs", "obs"), "lambda_reg": ("0.001", 0.001), "alpha": ("0.002", 0.002),
        "learning_rate": ("0.01", 0.01), "domain_epochs": ("2", 2), "max_grad_norm": ("0.5", 0.5),
        "apply_mask_to": ("finetuned", "finetuned"), "gradient_checkpointing": (None, False),
        "domain_batch_size": ("2", 2), "importance_dtype": ("bfloat16", "bfloat16"), "importance_device": ("cpu", "cpu"),
        "execution_device": ("cpu", "cpu"), "offload_activations": ("", True), "offload_hessians": ("", True),
        "domain_parallelism": ("fsdp", "fsdp"), "add_bos": ("false", False), "domain_weight": ("0.3", 0.3),
        "reconstruction": ("obs", "obs"),
        "mask_score": ("saliency_x_importance", "saliency_x_importance"), "importance_exponent": ("0.75", 0.75),
    }
    assert set(values) == set(CONFIG_FLAGS), "add a value for each new DPrunerConfig field"
    argv = []
    for name, (text, _) in values.items():
        if text is None:
            argv.append("--no-" + CONFIG_FLAGS[name][2:])
        elif text == "":  # a switch that defaults to off
            argv.append(CONFIG_FLAGS[name])
        else:
            argv += [CONFIG_FLAGS[name], *([text] if isinstance(text, str) else text)]
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    config = config_from_args(parser.parse_args(argv))
    assert config.to_dict() == {name: expected for name, (_, expected) in values.items()}
    assert config_from_args(parser.parse_args([])) == DPrunerConfig()  # no flag: the defaults
    assert config_from_args(parser.parse_args([]), preset="paper") == DPrunerConfig.paper()
    assert config_from_args(parser.parse_args(["--pattern", "1:4"]), preset="paper") == DPrunerConfig.paper(pattern="1:4")


def test_a_broken_install_does_not_break_optimum_cli(optimum_cli, tmp_path):
    broken = tmp_path / "shadow" / "optimum_dpruner"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('simulated broken install')\n")
    proc = run_cli(optimum_cli, "env", env={"PYTHONPATH": str(broken.parent)})
    assert proc.returncode == 0, proc.stderr
    assert "'optimum-cli dpruner' is unavailable (ImportError: simulated broken install)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_install_layout(optimum_cli, request):
    """Where the package and its register module are, and that no `__init__.py` is shipped in optimum's namespace."""
    code = (
        "import json, importlib.metadata as md, optimum_dpruner, optimum.commands.register.register_dpruner as r;"
        "files = [str(f) for f in md.distribution('optimum-dpruner').files or []];"
        "print(json.dumps({'pkg': optimum_dpruner.__file__, 'register': r.__file__, 'files': files,"
        " 'commands': [c.COMMAND.name for c in r.REGISTER_COMMANDS]}))"
    )
    proc = subprocess.run([str(optimum_cli.with_name("python")), "-c", code], capture_output=True, text=True, cwd=tempfile.gettempdir())
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["commands"] == ["dpruner"]
    if request.node.callspec.params["optimum_cli"] == "editable":
        assert Path(info["pkg"]).parent == REPO / "optimum_dpruner"
        assert Path(info["register"]).parent == REPO / "optimum" / "commands" / "register"
    else:
        assert "site-packages" in info["pkg"] and "site-packages" in info["register"]
        assert "optimum/commands/register/register_dpruner.py" in info["files"]
        assert "optimum_dpruner/data/medical_test.jsonl.gz" in info["files"]
        shipped_inits = [f for f in info["files"] if f.startswith("optimum/") and f.endswith("__init__.py")]
        assert shipped_inits == []  # PEP 420: optimum/, optimum/commands/, optimum/commands/register/ stay namespaces


# ----------------------------------------------------------------------------------------------- usage errors
BAD_ARGUMENTS = [
    ("missing-output", ["prune"], "--output is required"),  # -m may be left out: the embedded model
    ("recover-missing-model", ["recover", "-o", "{out}"], "-m/--model"),
    ("not-a-number", ["prune", "-m", "org/m", "-o", "{out}", "--sparsity", "abc"], "--sparsity"),
    ("out-of-range", ["prune", "-m", "org/m", "-o", "{out}", "--sparsity", "1.5"], "--sparsity"),
    ("pattern-conflict", ["prune", "-m", "org/m", "-o", "{out}", "--pattern", "2:4", "--sparsity", "0.3"], "--sparsity"),
    ("bad-pattern", ["prune", "-m", "org/m", "-o", "{out}", "--pattern", "2-4"], "--pattern"),
    ("unknown-method", ["prune", "-m", "org/m", "-o", "{out}", "--method", "obd"], "--method"),
    ("unknown-flag", ["prune", "-m", "org/m", "-o", "{out}", "--sparsiti", "0.5"], "--sparsiti"),
    ("no-domain-data", ["prune", "-m", "org/m", "-o", "{out}", "--method", "dpruner"], "--domain-dataset"),
    ("domain-data-unused", ["prune", "-m", "org/m", "-o", "{out}", "--method", "magnitude", "--domain-dataset", "builtin:legal"], "--domain-dataset"),
    ("unknown-builtin", ["prune", "-m", "org/m", "-o", "{out}", "--method", "wanda", "--general-dataset", "builtin:news"], "--general-dataset"),
    ("missing-config", ["prune", "-m", "org/m", "-o", "{out}", "--config", "{tmp}/nope.json"], "--config"),
    ("missing-importance", ["prune", "-m", "org/m", "-o", "{out}", "--importance", "{tmp}/nope"], "--importance"),
    ("importance-unused", ["prune", "-m", "org/m", "-o", "{out}", "--method", "wanda", "--importance", "{tmp}"], "--importance"),
    ("output-exists", ["prune", "-m", "org/m", "-o", "{tmp}"], "--overwrite"),
    ("missing-model", ["prune", "-m", "{tmp}/missing", "-o", "{out}", "--method", "magnitude"], "--model"),
    ("bad-dtype", ["prune", "-m", "org/m", "-o", "{out}", "--dtype", "int3"], "--dtype"),
    ("bad-device", ["prune", "-m", "org/m", "-o", "{out}", "--method", "magnitude", "--device", "gpu0"], "--device='gpu0' is not a device"),
    ("evaluate-bad-device", ["evaluate", "-m", "org/m", "--dataset", "builtin:medical", "--device", "gpu0"], "--device='gpu0' is not a device"),
    ("bad-window", ["evaluate", "-m", "org/m", "--dataset", "builtin:medical", "--window", "0"], "--window"),
    ("bad-add-bos", ["prune", "-m", "org/m", "-o", "{out}", "--add-bos", "yes"], "argument --add-bos: 'yes' is not auto, true or false"),
    ("evaluate-bad-add-bos", ["evaluate", "-m", "org/m", "--dataset", "builtin:medical", "--add-bos", "1"], "argument --add-bos: '1' is not auto, true or false"),
    ("stride-over-window", ["evaluate", "-m", "org/m", "--dataset", "builtin:medical", "--window", "8", "--stride", "16"], "--stride"),
    ("evaluate-nothing", ["evaluate", "-m", "org/m"], "--task"),
    ("evaluate-empty-prompt", ["evaluate", "-m", "org/m", "--prompt", ""], "--prompt='' is empty; pass a text for the model to continue"),
    ("reference-without-prompt", ["evaluate", "-m", "org/m", "--dataset", "builtin:medical", "--reference", "default"], "pass --prompt too"),
    ("unknown-task", ["evaluate", "-m", "org/m", "--task", "mmlu"], "--task"),
    ("inspect-no-folder", ["inspect", "{tmp}/missing"], "DIR"),
    ("push-no-checkpoint", ["push", "{tmp}", "me/model"], "DIR"),
    ("push-bad-repo", ["push", "{tmp}/ckpt", "a/b/c"], "REPO"),
    ("unknown-command", ["shrink"], "invalid choice"),
]


@pytest.mark.parametrize("args,expected", [(a, e) for _, a, e in BAD_ARGUMENTS], ids=[i for i, _, _ in BAD_ARGUMENTS])
def test_bad_arguments_exit_2_with_one_line(optimum_cli, tmp_path, args, expected):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    args = [a.format(tmp=tmp_path, out=tmp_path / "out") for a in args]
    proc = run_cli(optimum_cli, "dpruner", *args)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # one line, no usage block, no traceback
    assert proc.stderr.startswith("optimum-cli dpruner") and ": error: " in proc.stderr
    assert expected in proc.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------- prune
PRUNE_CASES = [
    ("dpruner", "unstructured", ["--domain-dataset", "builtin:medical", "--domain-num-samples", "1"]),
    ("sparsegpt", "2:4", []),
    ("sparsegpt", "unstructured", ["--domain-dataset", "builtin:medical", "--domain-weight", "0.3", "--domain-num-samples", "2"]),
    ("wanda", "unstructured", []),
    ("magnitude", "unstructured", []),
]


@pytest.mark.parametrize("method,pattern,extra", PRUNE_CASES, ids=[f"{m}-{p}{'-mixed' if e and m != 'dpruner' else ''}" for m, p, e in PRUNE_CASES])
def test_prune_saves_a_sparse_checkpoint(optimum_cli, model_dir, tmp_path, method, pattern, extra):
    out = tmp_path / "out"
    proc = run_cli(
        optimum_cli, "dpruner", "prune", "--model", model_dir, "--general-dataset", "builtin:general", *extra,
        "--method", method, "--sparsity", "0.5", "--pattern", pattern, *CALIBRATION, "--seed", "3", "--output", out,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "summary" in proc.stdout and f"{method} ({pattern})" in proc.stdout and str(out) in proc.stdout
    assert "%|" in proc.stderr  # progress bars
    weights = target_weights(out)
    assert len(weights) == 14  # 7 linears x 2 blocks
    for name, w in weights.items():
        assert abs((w == 0).float().mean().item() - 0.5) < 0.02, name
        if pattern == "2:4":
            assert ((w.reshape(-1, 4) == 0).sum(-1) >= 2).all(), name
    meta = json.loads((out / "config.json").read_text())["dpruner_sparsity"]
    assert meta["method"] == method and meta["pattern"] == pattern
    side_car = json.loads((out / "dpruner_config.json").read_text())
    assert side_car["config"]["seed"] == 3 and side_car["config"]["num_samples"] == 2
    if "--domain-weight" in extra:  # calibration mixing: both sets and the share are recorded
        assert side_car["config"]["domain_weight"] == 0.3
        assert side_car["calibration"]["domain"]["statistics_share"] == 0.3
        assert side_car["calibration"]["general"]["statistics_share"] == 0.7
        assert "30% of the mixed calibration statistics" in (out / "README.md").read_text()


def test_prune_config_file_with_flag_overrides(optimum_cli, model_dir, tmp_path):
    config = DPrunerConfig(method="magnitude", sparsity=0.3, seed=11, ignore=["*.o_proj"], seq_len=40)
    config_path = Path(config.save_pretrained(tmp_path / "cfg"))
    out = tmp_path / "out"
    proc = run_cli(optimum_cli, "dpruner", "prune", "-m", model_dir, "--config", config_path, "--sparsity", "0.6", "-o", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads((out / "dpruner_config.json").read_text())["config"]
    assert saved == {**config.to_recipe_dict(), "sparsity": 0.6}  # the flag won, everything else came from the file
    for name, w in target_weights(out).items():
        expected = 0.0 if name.endswith("o_proj.weight") else 0.6
        assert abs((w == 0).float().mean().item() - expected) < 0.02, name
    # a saved model folder works as --config too, and --pattern re-derives the sparsity
    again = tmp_path / "again"
    proc = run_cli(optimum_cli, "dpruner", "prune", "-m", model_dir, "--config", out, "--pattern", "2:4", "-o", again)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads((again / "dpruner_config.json").read_text())["config"]
    assert saved["pattern"] == "2:4" and saved["sparsity"] == 0.5 and saved["seed"] == 11


def test_prune_compressed(optimum_cli, model_dir, tmp_path):
    out = tmp_path / "out"
    proc = run_cli(optimum_cli, "dpruner", "prune", "-m", model_dir, "--method", "magnitude", "--compressed", "-o", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "config.json").read_text())["dpruner_sparsity"]["format"] == "bitmask"
    inspect = run_cli(optimum_cli, "dpruner", "inspect", out)
    assert inspect.returncode == 0, inspect.stderr[-3000:]


def test_prune_failure_exits_1_with_one_line(optimum_cli, model_dir, tmp_path):
    texts = tmp_path / "short.jsonl"
    texts.write_text(json.dumps({"text": "far too short"}) + "\n")
    out = tmp_path / "out"
    proc = run_cli(optimum_cli, "dpruner", "prune", "-m", model_dir, "--method", "wanda", "--general-dataset", texts, *CALIBRATION, "-o", out)
    assert proc.returncode == 1
    error = last_line(proc.stderr)
    assert error.startswith("optimum-cli dpruner prune: error: ") and "--seq-len=32" in error, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not out.exists()


# ----------------------------------------------------------------------------------------------- evaluate
def test_evaluate_matches_the_library(optimum_cli, pruned_dir, tokenizer):
    from transformers import AutoModelForCausalLM

    from optimum_dpruner.evaluation import perplexity

    proc = run_cli(
        optimum_cli, "dpruner", "evaluate", "-m", pruned_dir, "--dataset", "builtin:medical", "builtin:general",
        "--window", "32", "--limit", "2", "--json",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["sparsity"]["method"] == "magnitude"
    model = AutoModelForCausalLM.from_pretrained(pruned_dir)
    for source in ("builtin:medical", "builtin:general"):
        expected = perplexity(model, tokenizer, source, window=32, limit=2, progress=False)
        assert math.isfinite(report["perplexity"][source])
        assert report["perplexity"][source] == pytest.approx(expected, rel=1e-4)
    # --add-bos true forces the declared BOS (SmolLM2's tokenizer adds none): windows of BOS + 31 text tokens
    proc = run_cli(optimum_cli, "dpruner", "evaluate", "-m", pruned_dir, "--dataset", "builtin:medical", "--window", "32",
                   "--limit", "2", "--add-bos", "true", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["bos_token_id"] == tokenizer.bos_token_id and report["stride"] == 31
    expected = perplexity(model, tokenizer, "builtin:medical", window=32, limit=2, progress=False, add_bos=True)
    assert report["perplexity"]["builtin:medical"] == pytest.approx(expected, rel=1e-4)
    table = run_cli(optimum_cli, "dpruner", "evaluate", "-m", pruned_dir, "--dataset", "builtin:legal", "--window", "32", "--limit", "1")
    assert table.returncode == 0, table.stderr[-3000:]
    assert "perplexity" in table.stdout and "builtin:legal" in table.stdout and "magnitude" in table.stdout


def test_evaluate_tasks_match_the_library(optimum_cli, pruned_dir, tokenizer):
    from transformers import AutoModelForCausalLM

    from optimum_dpruner.evaluation import evaluate_task

    proc = run_cli(optimum_cli, "dpruner", "evaluate", "-m", pruned_dir, "--task", "pubmedqa", "casehold", "--limit", "2",
                   "--seed", "3", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    model = AutoModelForCausalLM.from_pretrained(pruned_dir)
    for task in ("pubmedqa", "casehold"):
        expected = evaluate_task(model, tokenizer, task, limit=2, seed=3, progress=False)
        assert report["tasks"][task] == pytest.approx({"items": 2, **expected.metrics})
    table = run_cli(optimum_cli, "dpruner", "evaluate", "-m", pruned_dir, "--task", "pubmedqa", "--limit", "1")
    assert table.returncode == 0, table.stderr[-3000:]
    assert "pubmedqa" in table.stdout and "macro_f1" in table.stdout


# ----------------------------------------------------------------------------------------------- inspect
def test_inspect_reports_and_checks_the_metadata(optimum_cli, pruned_dir):
    from transformers import AutoModelForCausalLM

    proc = run_cli(optimum_cli, "dpruner", "inspect", pruned_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "magnitude" in proc.stdout and "model.layers.1.mlp.down_proj" in proc.stdout
    # densify one matrix behind the metadata's back: inspect must catch it
    model = AutoModelForCausalLM.from_pretrained(pruned_dir)
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight.fill_(0.1)
    model.save_pretrained(pruned_dir)
    proc = run_cli(optimum_cli, "dpruner", "inspect", pruned_dir)
    assert proc.returncode == 1
    error = last_line(proc.stderr)
    assert error.startswith("optimum-cli dpruner inspect: error: ") and "up_proj" in error, proc.stderr[-2000:]


# ----------------------------------------------------------------------------------------------- push
TOKEN = "hf_cli_test_token"


@pytest.fixture
def fake_hub():
    fake_hub = pytest.importorskip("fake_hub", reason="tests/fake_hub.py (the loopback Hub of the checkpoint issue)")
    with fake_hub.FakeHub(token=TOKEN, user="user") as hub:
        yield hub


def _hub_env(hub) -> dict[str, str]:
    return {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1"}


def test_push_uploads_the_folder(optimum_cli, pruned_dir, fake_hub):
    proc = run_cli(optimum_cli, "dpruner", "push", pruned_dir, "user/tiny-pruned", "--private", env=_hub_env(fake_hub))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert fake_hub.url in proc.stdout and "user/tiny-pruned" in proc.stdout
    (commit,) = fake_hub.commits
    assert commit["repo_id"] == "user/tiny-pruned" and fake_hub.repos["user/tiny-pruned"]["private"] is True
    assert {"config.json", "model.safetensors", "dpruner_config.json", "README.md"} <= set(commit["files"])
    assert commit["files"]["config.json"] == (pruned_dir / "config.json").read_bytes()


def test_prune_push_to_hub(optimum_cli, model_dir, tmp_path, fake_hub):
    out = tmp_path / "out"
    proc = run_cli(
        optimum_cli, "dpruner", "prune", "-m", model_dir, "--method", "magnitude", "-o", out,
        "--push-to-hub", "user/tiny-magnitude", "--commit-message", "tiny test", env=_hub_env(fake_hub),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pushed" in proc.stdout
    (commit,) = fake_hub.commits
    assert commit["repo_id"] == "user/tiny-magnitude" and commit["summary"] == "tiny test"
    assert commit["files"]["model.safetensors"] == (out / "model.safetensors").read_bytes()


def test_push_failure_exits_1_with_one_line(optimum_cli, pruned_dir, fake_hub):
    proc = run_cli(optimum_cli, "dpruner", "push", pruned_dir, "someone-else/tiny", env=_hub_env(fake_hub))
    assert proc.returncode == 1
    error = last_line(proc.stderr)
    assert error.startswith("optimum-cli dpruner push: error: ") and "403" in error, proc.stderr[-2000:]
    assert TOKEN not in proc.stderr + proc.stdout and not fake_hub.commits


def test_prune_dry_run_prints_each_stage_and_writes_nothing(optimum_cli, model_dir, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    proc = run_cli(optimum_cli, "dpruner", "prune", "-m", model_dir, "--domain-dataset", "builtin:medical",
                   *CALIBRATION, "--dry-run", "--save-importance", "scores", cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.strip()}
    # the default recipe: the gradient pass, then the reconstruction pass; no general stage
    assert {"calibration_data", "domain_importance", "reconstruction", "run"} <= set(rows)
    assert "general_importance" not in rows and "masking" not in rows
    # the paper preset: general SparseGPT stage, gradient pass, masking
    proc = run_cli(optimum_cli, "dpruner", "prune", "-m", model_dir, "--domain-dataset", "builtin:medical",
                   *CALIBRATION, "--dry-run", "--preset", "paper", cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.strip()}
    assert {"calibration_data", "general_importance", "domain_importance", "masking", "run"} <= set(rows)
    assert "reconstruction" not in rows
    assert float(rows["run"][1]) == max(float(rows[s][1]) for s in ("general_importance", "domain_importance", "masking"))
    assert list(work.iterdir()) == []  # no output folder, no scores
    # without --dry-run, --output is still required
    proc = run_cli(optimum_cli, "dpruner", "prune", "-m", model_dir, "--method", "magnitude")
    assert proc.returncode == 2 and "--output is required" in last_line(proc.stderr)


# ----------------------------------------------------------------------------------------------- bad input
def _tiny_folder(make_tiny, tokenizer, path: Path, edit=None) -> Path:
    """A tiny LLaMA saved with the SmolLM2 tokenizer, after `edit(model)` (under no_grad)."""
    model = make_tiny("llama")
    if edit is not None:
        with torch.no_grad():
            edit(model)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _nan_model(c):
    return _tiny_folder(c.make_tiny, c.tokenizer, c.tmp / "nan", lambda m: m.model.layers[0].mlp.up_proj.weight.__setitem__((3, 5), float("nan")))


def _overflowing_model(c):  # finite weights whose activations overflow: Wanda's scores turn NaN
    return _tiny_folder(c.make_tiny, c.tokenizer, c.tmp / "overflow", lambda m: m.model.layers[0].post_attention_layernorm.weight.fill_(3e38))


def _checkpoint(c, name="ckpt", sparsity=0.5) -> Path:
    result = DPruner(c.make_tiny("llama"), c.tokenizer, DPrunerConfig(method="magnitude", sparsity=sparsity)).prune(progress=False)
    return Path(result.save_pretrained(c.tmp / name, model_card=False))


def _underpruned_checkpoint(c) -> Path:
    """What main wrote for a 0.5 request that reached 0.25: metadata recording the achieved sparsity."""
    folder = _checkpoint(c, "under", sparsity=0.25)
    config = json.loads((folder / "config.json").read_text())
    config["dpruner_sparsity"]["target_sparsity"] = 0.5
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _with_file(folder: Path, name: str, content: str) -> Path:
    (folder / name).write_text(content)
    return folder


def _truncated(folder: Path) -> Path:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return folder


def _bert(c) -> Path:
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)).save_pretrained(c.tmp / "bert")
    return c.tmp / "bert"


def _scores_of_another_model(c) -> Path:
    config = DPrunerConfig(num_samples=2, seq_len=32, domain_num_samples=1)
    other = DPruner(c.make_tiny("llama", seed=7), c.tokenizer, config).prune("builtin:general", "builtin:medical", progress=False)
    return Path(other.save_importance(c.tmp / "scores"))


def _nan_checkpoint(c) -> Path:
    """A pruned checkpoint with one NaN weight: every zero is where the metadata says, the model outputs NaN."""
    from safetensors.torch import load_file, save_file

    folder = _checkpoint(c)
    tensors = load_file(folder / "model.safetensors")
    tensors["model.layers.0.mlp.up_proj.weight"][3, 5] = float("nan")
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def _tampered(c, **changes) -> Path:
    """A pruned checkpoint whose `dpruner_sparsity` block was edited (`per_matrix` edits the first matrix)."""
    folder = _checkpoint(c)
    config = json.loads((folder / "config.json").read_text())
    block = config["dpruner_sparsity"]
    for key, value in changes.items():
        if key == "per_matrix":
            block["per_matrix_sparsity"][next(iter(block["per_matrix_sparsity"]))] = value
        else:
            block[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _latin1_jsonl(c) -> Path:
    (c.tmp / "l.jsonl").write_bytes('{"text": "café"}\n'.encode("latin-1"))
    return c.tmp / "l.jsonl"


def _model_without_tokenizer(c) -> Path:
    c.make_tiny("llama").save_pretrained(c.tmp / "notok")
    return c.tmp / "notok"


def _mismatched_config(c) -> Path:
    config = json.loads((c.model / "config.json").read_text())
    return _with_file(c.model, "config.json", json.dumps({**config, "hidden_size": 32}))


def _without_config(c) -> Path:
    (c.model / "config.json").unlink()
    return c.model


def _mixed_data_folder(c) -> Path:
    """Issue 31: a jsonl beside two .txt files, which datasets read instead of the jsonl (the most common extension)."""
    folder = c.tmp / "mydata"
    folder.mkdir()
    _with_file(folder, "data.jsonl", "".join(json.dumps({"text": f"text number {i} " * 20}) + "\n" for i in range(20)))
    _with_file(folder, "notes.txt", "my notes")
    return _with_file(folder, "LICENSE.txt", "MIT licence")


PRUNE = ["dpruner", "prune", "--method", "wanda", *CALIBRATION]
SCORES = ["dpruner", "prune", "--domain-dataset", "builtin:medical", "--preset", "paper", *CALIBRATION]
# (id, arguments built from the fixtures, exit code, what the one error line holds: a string or a tuple of them)
BAD_INPUTS = [
    ("empty-general-dataset", lambda c: [*PRUNE, "-m", c.model, "--general-dataset", "", "-o", c.out], 2,
     "--general-dataset '' is empty"),
    ("empty-jsonl", lambda c: [*PRUNE, "-m", c.model, "--general-dataset", _with_file(c.tmp, "empty.jsonl", "") / "empty.jsonl",
                               "-o", c.out], 2, "empty.jsonl' is empty"),
    ("data-folder-of-mixed-kinds", lambda c: [*PRUNE, "-m", c.model, "--general-dataset", _mixed_data_folder(c), "-o", c.out], 2,
     ("--general-dataset '", "holds data files of 2 kinds (json: data.jsonl; text: LICENSE.txt, notes.txt)",
      "pass the file you mean (e.g. '")),
    ("missing-relative-data", lambda c: [*PRUNE, "-m", c.model, "--general-dataset", "mydata/train.jsonl", "-o", c.out], 2,
     "--general-dataset 'mydata/train.jsonl': 'mydata/train.jsonl' does not exist (nothing at '"),
    ("model-folder-as-data", lambda c: [*PRUNE, "-m", c.model, "--general-dataset", c.model, "-o", c.out], 2,
     "holds a model (config.json, model.safetensors), not calibration texts"),
    ("nan-weight", lambda c: [*PRUNE, "-m", _nan_model(c), "-o", c.out], 1,
     "the weight model.layers.0.mlp.up_proj.weight holds 1 NaN"),
    ("missed-sparsity", lambda c: [*PRUNE, "-m", _overflowing_model(c), "-o", c.out], 1, "pruning missed --sparsity=0.5"),
    ("encoder-model", lambda c: [*PRUNE, "-m", _bert(c), "-o", c.out], 1, "model_type='bert' (BertModel) is an encoder"),
    ("truncated-weights", lambda c: [*PRUNE, "-m", _truncated(c.model), "-o", c.out], 1,
     "model.safetensors': the weights are truncated or corrupt"),
    ("corrupt-model-config", lambda c: [*PRUNE, "-m", _with_file(c.model, "config.json", "{bad"), "-o", c.out], 1,
     "config.json' is not a valid JSON file"),
    ("missing-relative-model", lambda c: [*PRUNE, "-m", "models/tiny", "-o", c.out], 1,
     "'models/tiny' is not a local folder or file (nothing at"),
    ("missing-model-not-a-hub-id", lambda c: [*PRUNE, "-m", "my tiny model", "-o", c.out], 2,
     "--model 'my tiny model' does not exist"),
    ("config-json-list", lambda c: [*PRUNE, "-m", c.model, "--config", _with_file(c.tmp, "c.json", "[0.5]") / "c.json",
                                    "-o", c.out], 2, "c.json' holds a JSON list, not an object"),
    ("config-unknown-key", lambda c: [*PRUNE, "-m", c.model, "--config", _with_file(c.tmp, "c.json", '{"sparsty": 0.7}') / "c.json",
                                      "-o", c.out], 2, "unknown DPrunerConfig key 'sparsty' (did you mean 'sparsity'?)"),
    ("damp-nan", lambda c: [*PRUNE, "-m", c.model, "--damp", "nan", "-o", c.out], 2, "--damp=nan must be a finite"),
    ("learning-rate-inf", lambda c: [*PRUNE, "-m", c.model, "--learning-rate", "inf", "-o", c.out], 2,
     "--learning-rate=inf must be a finite"),
    ("dry-run-seq-len", lambda c: ["dpruner", "prune", "--method", "wanda", "-m", c.model, "--seq-len", "1024", "--dry-run"], 2,
     "--seq-len=1024 exceeds the model's limit of 512 tokens"),
    ("importance-of-another-model", lambda c: ["dpruner", "prune", "-m", c.model, "--importance", _scores_of_another_model(c),
                                               "--preset", "paper", "-o", c.out], 2, "was computed on another model"),
    ("importance-without-domain-data", lambda c: ["dpruner", "prune", "-m", c.model, "--importance", _scores_of_another_model(c),
                                                  "-o", c.out], 2, "--importance with the reconstruction pass (the default "
                                                                   "recipe) needs --domain-dataset too"),
    ("output-under-a-file", lambda c: [*PRUNE, "-m", c.model, "-o", _with_file(c.tmp, "file.txt", "x") / "file.txt" / "out"], 2,
     "file.txt', which is a file"),
    ("save-importance-under-a-file", lambda c: ["dpruner", "prune", "-m", c.model, "--domain-dataset", "builtin:medical",
                                                "--save-importance", _with_file(c.tmp, "f.txt", "x") / "f.txt" / "s", "-o", c.out],
     2, ("--save-importance=", "f.txt', which is a file")),
    ("save-importance-over-the-input-weights", lambda c: [*SCORES, "-m", c.model, "--save-importance", c.model / "model.safetensors",
                                                          "-o", c.out], 2,
     ("--save-importance='", "tiny/model.safetensors' is inside the model being pruned (")),
    ("save-importance-into-the-input-model", lambda c: [*SCORES, "-m", c.model, "--save-importance", c.model, "-o", c.out], 2,
     "is inside the model being pruned"),
    ("save-importance-into-the-output", lambda c: [*SCORES, "-m", c.model, "--save-importance", c.out / "model.safetensors",
                                                   "-o", c.out], 2,
     ("--save-importance='", "out/model.safetensors' is inside the checkpoint being saved (--output)")),
    ("save-importance-into-the-replaced-output", lambda c: [*SCORES, "-m", c.model, "--save-importance", _checkpoint(c, "out2"),
                                                            "--overwrite", "-o", c.tmp / "out2"], 2,
     "is inside the checkpoint being saved (--output)"),
    ("save-importance-over-earlier-scores", lambda c: [*SCORES, "-m", c.model, "--save-importance", _scores_of_another_model(c),
                                                       "-o", c.out], 2,
     "already holds importance scores; pass --overwrite to replace them, or choose another path."),
    ("save-importance-over-a-foreign-file", lambda c: [*SCORES, "-m", c.model, "--overwrite", "--save-importance",
                                                       _with_file(c.tmp, "mine.safetensors", "x") / "mine.safetensors", "-o", c.out], 2,
     "mine.safetensors' exists and is not a scores file written by optimum-dpruner; it is never replaced"),
    ("config-seed-not-a-number", lambda c: [*PRUNE, "-m", c.model, "--config", _with_file(c.tmp, "c.json", '{"seed": "abc"}') / "c.json",
                                            "-o", c.out], 2, "--seed='abc' must be an integer in [0, 2**64)"),
    ("config-seed-float", lambda c: [*PRUNE, "-m", c.model, "--config", _with_file(c.tmp, "c.json", '{"seed": 1.5}') / "c.json",
                                     "-o", c.out], 2, "--seed=1.5 must be an integer"),
    ("config-sparsity-false", lambda c: [*PRUNE, "-m", c.model, "--config", _with_file(c.tmp, "c.json", '{"sparsity": false}') / "c.json",
                                         "-o", c.out], 2, "--sparsity=False must be a number in [0, 1)"),
    ("config-text-column-null", lambda c: [*PRUNE, "-m", c.model, "--config", _with_file(c.tmp, "c.json", '{"text_column": null}') / "c.json",
                                           "-o", c.out], 2, "--text-column=None must be the name of a dataset column"),
    ("importance-device-bogus", lambda c: [*SCORES, "-m", c.model, "--importance-device", "bogus", "-o", c.out], 2,
     "--importance-device='bogus' is not a device name"),
    ("mask-score-with-wanda", lambda c: [*PRUNE, "-m", c.model, "--mask-score", "importance", "-o", c.out], 2,
     "--mask-score is used only by --method dpruner, so with --method wanda it would have no effect"),
    ("general-importance-with-magnitude", lambda c: ["dpruner", "prune", "--method", "magnitude", "-m", c.model,
                                                     "--general-importance", "sparsegpt", "-o", c.out], 2,
     "--general-importance is used only by --method dpruner"),
    ("empty-output", lambda c: [*PRUNE, "-m", c.model, "-o", ""], 2, "--output '' is empty; pass the folder to write"),
    ("overwrite-foreign-files", lambda c: [*PRUNE, "-m", c.model, "--overwrite", "-o", _with_file(_checkpoint(c), "notes.txt", "mine")],
     2, "holds files optimum-dpruner did not write (notes.txt)"),
    ("overwrite-current-directory", lambda c: [*PRUNE, "-m", c.model, "--overwrite", "-o", "."], 2,
     "is the current directory or a parent of it"),
    ("overwrite-the-input-model", lambda c: [*PRUNE, "-m", c.model, "--overwrite", "-o", c.model], 2,
     "holds the model being pruned"),
    ("inspect-under-requested", lambda c: ["dpruner", "inspect", _underpruned_checkpoint(c)], 1, "< requested 0.5000"),
    ("inspect-corrupt-config", lambda c: ["dpruner", "inspect", _with_file(_checkpoint(c), "config.json", "{bad")], 1,
     "config.json' is not valid JSON"),
    ("inspect-corrupt-side-car", lambda c: ["dpruner", "inspect", _with_file(_checkpoint(c), "dpruner_config.json", "[")], 1,
     "dpruner_config.json' is not valid JSON"),
    ("inspect-truncated-weights", lambda c: ["dpruner", "inspect", _truncated(_checkpoint(c))], 1,
     "model.safetensors' is truncated or corrupt"),
    ("inspect-nan-weight", lambda c: ["dpruner", "inspect", _nan_checkpoint(c)], 1,
     "model.layers.0.mlp.up_proj: holds 1 NaN and 0 inf values (of 8192)"),
    ("push-nan-weight", lambda c: ["dpruner", "push", _nan_checkpoint(c), "user/tiny"], 1, "holds 1 NaN and 0 inf values"),
    ("inspect-tampered-global-sparsity", lambda c: ["dpruner", "inspect", _tampered(c, global_sparsity=0.9)], 1,
     "global_sparsity 0.9000 is recorded, but the target matrices hold 0.5000 zeros"),
    ("inspect-tampered-pattern", lambda c: ["dpruner", "inspect", _tampered(c, pattern="abc")], 1,
     "config.json's dpruner_sparsity has pattern='abc', not 'unstructured' or 'N:M'"),
    ("inspect-nan-target", lambda c: ["dpruner", "inspect", _tampered(c, target_sparsity=float("nan"))], 1,
     "has target_sparsity=nan, not a number in [0, 1]"),
    ("inspect-per-matrix-half", lambda c: ["dpruner", "inspect", _tampered(c, per_matrix="half")], 1,
     "='half', not a number in [0, 1]"),
    ("evaluate-nan-model", lambda c: ["dpruner", "evaluate", "-m", _nan_model(c), "--dataset", "builtin:medical", "--limit", "2",
                                      "--window", "32"], 1,
     ("perplexity on 'builtin:medical' is nan, so the model's outputs are not finite",)),
    ("latin-1-jsonl", lambda c: [*PRUNE, "-m", c.model, "--general-dataset", _latin1_jsonl(c), "-o", c.out], 1,
     ("--general-dataset=", "l.jsonl' is not UTF-8 text (byte 13 is 0xe9); re-encode it as UTF-8")),
    ("model-without-tokenizer", lambda c: [*PRUNE, "-m", _model_without_tokenizer(c), "-o", c.out], 1,
     "notok' has no tokenizer, which --method wanda needs to cut calibration data; save the tokenizer"),
    ("model-config-not-matching-the-weights", lambda c: [*PRUNE, "-m", _mismatched_config(c), "-o", c.out], 1,
     "tiny': config.json does not match the weights"),
    ("model-folder-without-config", lambda c: [*PRUNE, "-m", _without_config(c), "-o", c.out], 1,
     "is a folder without config.json (it holds"),
    ("fake-gguf", lambda c: [*PRUNE, "-m", _with_file(c.tmp, "fake.gguf", "GGUF garbage") / "fake.gguf", "-o", c.out], 1,
     "fake.gguf' is not a readable GGUF file"),
    ("push-under-requested", lambda c: ["dpruner", "push", _underpruned_checkpoint(c), "user/tiny"], 1, "< requested 0.5000"),
    ("push-corrupt-config", lambda c: ["dpruner", "push", _with_file(_checkpoint(c), "config.json", "{bad"), "user/tiny"], 1,
     "config.json' is not valid JSON"),
]


class _Context:
    def __init__(self, tmp: Path, model: Path, make_tiny, tokenizer) -> None:
        self.tmp, self.model, self.make_tiny, self.tokenizer = tmp, model, make_tiny, tokenizer
        self.out = tmp / "out"


@pytest.mark.parametrize("build,code,expected", [(b, c, e) for _, b, c, e in BAD_INPUTS], ids=[i for i, *_ in BAD_INPUTS])
def test_bad_input_fails_with_one_line_and_touches_nothing(optimum_cli, model_dir, make_tiny, tokenizer, tmp_path, build, code, expected):
    context = _Context(tmp_path, model_dir, make_tiny, tokenizer)
    args = build(context)
    work = context.model if "." in args else tmp_path  # '-o .' runs inside the model folder
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    proc = run_cli(optimum_cli, *args, cwd=work)
    assert proc.returncode == code, proc.stderr[-3000:]
    error = last_line(proc.stderr)
    assert error.startswith("optimum-cli dpruner ") and ": error: " in error, proc.stderr[-3000:]
    assert all(part in error for part in ((expected,) if isinstance(expected, str) else expected)), error
    assert "Traceback" not in proc.stderr
    assert not context.out.exists() and not any(p.name.startswith(".") for p in tmp_path.iterdir())
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # nothing deleted or changed
    if code == 2 and "--importance" not in args:  # the scores' fingerprint is checked against the loaded model
        assert "[dpruner] loading" not in proc.stderr  # refused before any work


def test_save_importance_replaces_earlier_scores_only_with_overwrite(optimum_cli, model_dir, make_tiny, tokenizer, tmp_path):
    """Issue 31: earlier scores are replaced with --overwrite (and the checkpoint beside them still loads)."""
    from optimum_dpruner import load_importance, load_pretrained

    earlier = _scores_of_another_model(_Context(tmp_path, model_dir, make_tiny, tokenizer))
    old = earlier.read_bytes()
    proc = run_cli(optimum_cli, *SCORES, "-m", model_dir, "--save-importance", earlier, "--overwrite", "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert earlier.read_bytes() != old and load_importance(earlier)["I"]
    load_pretrained(tmp_path / "out")
    assert not (tmp_path / "out" / "dpruner_importance.safetensors").exists()


# ----------------------------------------------------------------------------------------------- Ctrl-C
class _InterruptedInDel:
    """Ctrl-C arriving while Python runs a `__del__`: it prints "Exception ignored in ..." and goes on."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100_000):  # the Python-level handler runs here, inside __del__
            pass


@pytest.mark.parametrize("swallow", ["__del__", "except-BaseException"])
def test_an_interrupt_swallowed_on_the_way_still_exits_130(capsys, swallow):
    """SIGINT during a CLI prune once exited 0 with a KeyboardInterrupt traceback: a library swallowed it."""
    import argparse

    from optimum.commands.base import CommandInfo

    from optimum_dpruner.cli.base import DPrunerCLICommand

    class Command(DPrunerCLICommand):
        COMMAND = CommandInfo(name="work", help="A command whose work is interrupted.")

        def execute(self):
            if swallow == "__del__":
                _InterruptedInDel()  # deleted at once
            else:
                try:
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(5)
                except BaseException:  # a library that does not re-raise
                    pass
            return 0

    command = Command(argparse.ArgumentParser(prog="optimum-cli dpruner").add_subparsers(), args=argparse.Namespace())
    previous = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as exit_info:
            command.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err
    assert exit_info.value.code == 130, err
    assert err.strip() == "optimum-cli dpruner work: error: interrupted.", err  # no "Exception ignored", no traceback


@pytest.mark.parametrize("stage", ["loading", "pruning with", "saving to"])
def test_ctrl_c_during_a_prune_exits_130_and_leaves_no_partial_output(optimum_cli, model_dir, tmp_path, stage):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"), TOKENIZERS_PARALLELISM="false")
    if optimum_cli.parent == Path(sys.executable).parent:
        env["PYTHONPATH"] = str(REPO)
    child = subprocess.Popen(
        [str(optimum_cli), "dpruner", "prune", "-m", str(model_dir), "--method", "sparsegpt", "--num-samples", "16",
         "--seq-len", "128", "--no-progress", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )
    seen = []
    for line in child.stderr:  # status lines come on stderr as the run goes
        seen.append(line)
        if line.startswith(f"[dpruner] {stage}"):
            child.send_signal(signal.SIGINT)
            break
    rest_out, rest_err = child.communicate(timeout=300)
    err = "".join(seen) + rest_err
    assert child.returncode == 130, err[-3000:]
    assert last_line(err) == "optimum-cli dpruner prune: error: interrupted." and "Traceback" not in err, err[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "out") == ["tiny"]  # no hidden half-written folder
    if out.exists():  # the interrupt came after the last rename: the checkpoint is complete
        from optimum_dpruner import verify_sparsity

        assert stage == "saving to" and verify_sparsity(str(out)).ok
