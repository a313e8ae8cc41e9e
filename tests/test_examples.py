"""The examples run end to end (on a tiny random LLaMA with the real tokenizer, tiny sizes), so they cannot rot.

Mechanics only: their quality on SmolLM2 is what the benchmarks measure.
"""

import json
import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


@pytest.mark.parametrize("script,domain", [("medical.py", "medical"), ("legal.py", "legal")])
def test_example_runs_saves_and_prints_the_table(tmp_path, tiny_llama, tokenizer, script, domain):
    tiny_llama.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    out = tmp_path / "model"
    args = ["--model", str(tmp_path / "tiny"), "--num-samples", "2", "--domain-num-samples", "1", "--seq-len", "64", "--eval-windows", "1", "--output", str(out)]
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *args], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "general (Wikipedia test)" in proc.stdout and f"{domain} (test)" in proc.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["dpruner_sparsity"]["method"] == "dpruner"
    assert abs(config["dpruner_sparsity"]["global_sparsity"] - 0.5) < 0.01
    assert (out / "model.safetensors").exists() and (out / "dpruner_config.json").exists()
