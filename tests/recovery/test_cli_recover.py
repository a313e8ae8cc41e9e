"""`optimum-cli dpruner recover` as a user runs it: a subprocess (`python -m optimum_dpruner.cli.recover`, the same
command class optimum-cli registers), then the output reloaded with plain transformers and its zeros counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from optimum_dpruner import verify_sparsity
from optimum_dpruner.recovery.masking import target_names

from .conftest import GENERAL, TEXT, assert_zeros_kept, pruned_positions

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONPATH")}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    cli = Path(sys.executable).with_name("optimum-cli")
    return subprocess.run([str(cli), "dpruner", "recover", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)


def test_recover_command_end_to_end_and_its_errors(prune_tiny, tmp_path):
    pruned = prune_tiny("2:4")
    pruned_dir = pruned.save_pretrained(tmp_path / "pruned")
    before = pruned_positions(pruned.model, target_names(pruned.model))
    (tmp_path / "general.jsonl").write_text(json.dumps({"text": GENERAL}) + "\n")
    (tmp_path / "domain.jsonl").write_text(json.dumps({"text": TEXT}) + "\n")
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    common = ["-m", pruned_dir, "--general-dataset", tmp_path / "general.jsonl", "--domain-dataset",
              tmp_path / "domain.jsonl", "--max-steps", "2", "--seq-len", "32", "--batch-size", "2", "--warmup-steps", "0",
              "--no-progress"]

    done = _run(*common, "--mode", "lora", "--lora-r", "4", "-o", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "summary" in done.stdout and "0 pruned weights made non-zero" in done.stdout
    from transformers import AutoModelForCausalLM

    assert verify_sparsity(str(tmp_path / "out")).ok
    assert_zeros_kept(AutoModelForCausalLM.from_pretrained(tmp_path / "out"), before)

    # errors: one line each, exit 2 for the command line, before any work
    refused = _run(*common, "-o", foreign, "--overwrite", cwd=tmp_path)
    assert refused.returncode == 2 and "is not a checkpoint written by optimum-dpruner" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and os.listdir(foreign) == ["mine.txt"]
    bad_lr = _run(*common, "--learning-rate", "0", "-o", tmp_path / "x", cwd=tmp_path)
    assert bad_lr.returncode == 2 and "--learning-rate=0.0 must be a finite number > 0" in bad_lr.stderr


def test_prune_with_recover_saves_the_recovered_model(make_tiny, tokenizer, tmp_path):
    dense = tmp_path / "dense"
    make_tiny("llama").save_pretrained(dense)
    tokenizer.save_pretrained(dense)
    (tmp_path / "general.jsonl").write_text(json.dumps({"text": GENERAL}) + "\n")
    (tmp_path / "domain.jsonl").write_text(json.dumps({"text": TEXT}) + "\n")
    (tmp_path / "recipe.json").write_text(json.dumps({"max_steps": 2, "seq_len": 32, "warmup_steps": 0}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONPATH")}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    cli = Path(sys.executable).with_name("optimum-cli")

    def prune(*args):
        common = ["-m", dense, "--method", "magnitude", "--general-dataset", tmp_path / "general.jsonl", "--no-progress"]
        return subprocess.run([str(cli), "dpruner", "prune", *map(str, common), *map(str, args)], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=600)

    done = prune("--domain-dataset", tmp_path / "domain.jsonl", "--recover", "--recovery-config",
                 tmp_path / "recipe.json", "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "recovery" in done.stdout and "pruned weights made non-zero: 0" in done.stdout
    side_car = json.loads((tmp_path / "out" / "dpruner_config.json").read_text())
    assert side_car["config"]["method"] == "magnitude" and side_car["recovery"]["steps"] == 2
    assert side_car["recovery"]["config"]["seq_len"] == 32
    check = verify_sparsity(str(tmp_path / "out"))
    assert check.ok and check.rows and all(abs(r.actual - 0.5) < 0.01 for r in check.rows)

    # errors: one line, exit 2, before the model is loaded
    lone = prune("--recovery-config", tmp_path / "recipe.json", "-o", tmp_path / "x")
    assert lone.returncode == 2 and "--recovery-config is used only with --recover" in lone.stderr
    no_domain = prune("--recover", "-o", tmp_path / "y")
    assert no_domain.returncode == 2 and "--recover needs --domain-dataset" in no_domain.stderr
    assert len(no_domain.stderr.strip().splitlines()) == 1 and not (tmp_path / "y").exists()


def test_ctrl_c_mid_training_leaves_no_output_and_resume_finishes(prune_tiny, tmp_path):
    """SIGINT while the Trainer trains: exit 130 with one line, nothing at -o; the same command with --resume goes on
    from the last complete Trainer checkpoint (a newer folder a stopped save left half-written is skipped)."""
    import signal
    import time

    pruned_dir = prune_tiny().save_pretrained(tmp_path / "pruned")
    (tmp_path / "general.jsonl").write_text(json.dumps({"text": GENERAL}) + "\n")
    (tmp_path / "domain.jsonl").write_text(json.dumps({"text": TEXT}) + "\n")
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONPATH")}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    command = [str(Path(sys.executable).with_name("optimum-cli")), "dpruner", "recover", "-m", str(pruned_dir),
               "--general-dataset", str(tmp_path / "general.jsonl"), "--domain-dataset", str(tmp_path / "domain.jsonl"),
               "--max-steps", "200", "--seq-len", "32", "--batch-size", "1", "--warmup-steps", "0", "--lora-r", "4",
               "--save-steps", "5", "--training-dir", str(ckpt), "--no-progress", "-o", str(out)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    deadline = time.time() + 300
    while not (ckpt / "checkpoint-10" / "trainer_state.json").is_file() and child.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=300)
    assert child.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1] == "optimum-cli dpruner recover: error: interrupted." and "Traceback" not in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt", "domain.jsonl", "general.jsonl", "pruned"]  # no half-written output beside it either
    steps = sorted(int(p.name.split("-")[1]) for p in ckpt.iterdir())
    assert steps and steps[-1] < 200
    first = (ckpt / "checkpoint-5" / "trainer_state.json").stat().st_mtime_ns
    (ckpt / "checkpoint-9999").mkdir()  # what a save stopped after its first file leaves: no trainer_state.json
    (ckpt / "checkpoint-9999" / "model.safetensors").write_bytes(b"")

    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    side_car = json.loads((out / "dpruner_config.json").read_text())
    assert side_car["recovery"]["steps"] == 200 and verify_sparsity(str(out)).ok
    assert (ckpt / "checkpoint-5" / "trainer_state.json").stat().st_mtime_ns == first  # went on, did not start over
