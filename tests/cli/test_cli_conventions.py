"""The conventions of optimum-cli and transformers, as a user meets them: choices in --help, the loading flags
(--revision, --trust-remote-code, --cache-dir), the push branch's own flag, --device's default, `evaluate --output`,
`inspect` of a Hub id, and the embedded model when -m is left out or is `default`."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from optimum_dpruner import DPrunerConfig
from optimum_dpruner.cli import EvaluateCommand, InspectCommand, PruneCommand, PushCommand, RecoverCommand
from optimum_dpruner.configuration import FIELD_CHOICES
from optimum_dpruner.errors import ConfigError

from .test_cli import TOKEN, _hub_env, fake_hub, last_line, model_dir, optimum_cli, pruned_dir, run_cli  # noqa: F401

COMMANDS = {"prune": PruneCommand, "recover": RecoverCommand, "evaluate": EvaluateCommand, "inspect": InspectCommand,
            "push": PushCommand}
#: flags whose value is one of a fixed set, by command (beyond the DPrunerConfig fields of FIELD_CHOICES)
ENUMERATED = {
    "prune": {"--preset", "--add-bos", "--dtype"},
    "recover": {"--mode", "--lr-scheduler-type", "--train-params", "--add-bos", "--dtype"},
    "evaluate": {"--task", "--resample-by", "--add-bos", "--dtype"},
    "inspect": set(),
    "push": set(),
}


def _parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"optimum-cli dpruner {name}")
    COMMANDS[name].parse_args(parser)
    return parser


@pytest.mark.parametrize("name", list(COMMANDS), ids=list(COMMANDS))
def test_every_enumerated_option_declares_its_choices(name):
    actions = {a.option_strings[-1]: a for a in _parser(name)._actions if a.option_strings}
    expected = set(ENUMERATED[name])
    if name == "prune":
        expected |= {"--" + f.replace("_", "-") for f in FIELD_CHOICES}
    missing = sorted(flag for flag in expected if actions[flag].choices is None)
    assert not missing, f"{name}: {missing} take one of a fixed set but declare no choices"
    # and no flag describes a fixed set in its help ("'a' or 'b'", "a|b") without declaring it
    listed = re.compile(r"'[\w:-]+'(, '[\w:-]+')* or '[\w:-]+'|\b\w+\|\w+\b")
    vague = sorted(f for f, a in actions.items() if a.choices is None and a.help and listed.search(a.help)
                   and f not in ("--pattern", "--targets", "--ignore", "--importance-device", "--execution-device"))
    assert not vague, f"{name}: {vague} list their values in the help but declare no choices"


@pytest.mark.parametrize("field", list(FIELD_CHOICES), ids=list(FIELD_CHOICES))
def test_field_choices_are_what_the_config_accepts(field):
    for value in FIELD_CHOICES[field]:
        extra = {"general_importance": "sparsegpt"} if field == "lambda_reg" else {}
        if field == "reconstruction" and value == "none":
            extra["method"] = "wanda"
        DPrunerConfig(**{field: value, **extra})
    with pytest.raises(ConfigError):
        DPrunerConfig(**{field: "bogus"})


def test_prune_help_shows_the_choices_and_the_loading_flags(optimum_cli):
    proc = run_cli(optimum_cli, "dpruner", "prune", "--help")
    assert proc.returncode == 0, proc.stderr
    for field, values in FIELD_CHOICES.items():
        assert f"--{field.replace('_', '-')} {{{','.join(values)}}}" in proc.stdout, field
    for flag in ("--revision REV", "--trust-remote-code", "--cache-dir DIR", "--push-revision BRANCH",
                 "--add-bos {auto,true,false}", "--dtype {auto,float32,float16,bfloat16}"):
        assert flag in proc.stdout, flag
    assert "default: the accelerator when there is one" in proc.stdout
    group = run_cli(optimum_cli, "dpruner", "--help")
    assert "130 interrupted" in group.stdout and "wiki_next" in group.stdout


def test_device_defaults_to_the_accelerator(monkeypatch):
    from optimum_dpruner.cli.arguments import resolve_device
    from optimum_dpruner.runtime import devices

    args = argparse.Namespace(device=None)
    monkeypatch.setattr(devices, "default_device", lambda: "cuda")
    assert resolve_device(args) == "cuda"
    assert resolve_device(args, execution_device="cuda") is None  # block by block: the model stays where it loads
    assert resolve_device(argparse.Namespace(device="cpu")) == "cpu"
    monkeypatch.setattr(devices, "default_device", lambda: "cpu")
    assert resolve_device(args) is None


def test_evaluate_output_writes_the_json(optimum_cli, pruned_dir, tmp_path):
    out = tmp_path / "results.json"
    args = ("dpruner", "evaluate", "-m", pruned_dir, "--dataset", "builtin:medical", "--limit", "2", "--window", "32")
    proc = run_cli(optimum_cli, *args, "--json", "--output", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = json.loads(out.read_text())
    assert written == json.loads(proc.stdout) and written["perplexity"]["builtin:medical"] > 1
    assert "on cpu" in proc.stderr  # --device left out on a machine without an accelerator
    proc = run_cli(optimum_cli, *args, "--output", tmp_path / "no" / "such" / "r.json")
    assert proc.returncode == 2 and "does not exist" in last_line(proc.stderr)


def test_the_embedded_model_without_m_or_with_m_default(optimum_cli, tmp_path):
    for model in ([], ["-m", "default"]):
        proc = run_cli(optimum_cli, "dpruner", "prune", *model, "--domain-dataset", "builtin:medical", "--dry-run",
                       "--num-samples", "2", "--seq-len", "32", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "reconstruction" in proc.stdout and list(tmp_path.iterdir()) == []
    proc = run_cli(optimum_cli, "dpruner", "evaluate", "--dataset", "builtin:medical", "--limit", "1", "--window", "32",
                   "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["model"] == "default"


def test_revision_selects_the_loaded_model_and_inspect_reads_a_hub_id(optimum_cli, pruned_dir, tmp_path, fake_hub):
    env, cache = _hub_env(fake_hub), tmp_path / "hub-cache"
    proc = run_cli(optimum_cli, "dpruner", "push", pruned_dir, "user/tiny", "--push-revision", "dev", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert fake_hub.commits[-1]["revision"] == "dev" and fake_hub.repos["user/tiny"]["branches"]["main"] == {}
    proc = run_cli(optimum_cli, "dpruner", "inspect", "user/tiny", "--revision", "dev", "--cache-dir", cache, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "magnitude" in proc.stdout and "model.layers.1.mlp.down_proj" in proc.stdout and cache.is_dir()
    proc = run_cli(optimum_cli, "dpruner", "inspect", "user/tiny", "--cache-dir", cache, env=env)  # main: empty
    assert proc.returncode != 0
    proc = run_cli(optimum_cli, "dpruner", "evaluate", "-m", "user/tiny", "--revision", "dev", "--cache-dir", cache,
                   "--dataset", "builtin:medical", "--limit", "1", "--window", "32", "--json", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_cli(optimum_cli, "dpruner", "prune", "-m", "user/tiny", "--revision", "no-such-branch", "--cache-dir",
                   cache, "--method", "magnitude", "-o", tmp_path / "out", env=env)
    assert proc.returncode == 1 and "user/tiny" in last_line(proc.stderr), proc.stderr[-2000:]
    proc = run_cli(optimum_cli, "dpruner", "prune", "-m", "user/tiny", "--revision", "dev", "--cache-dir", cache,
                   "--method", "magnitude", "--sparsity", "0.6", "-o", tmp_path / "out", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_cli(optimum_cli, "dpruner", "recover", "-m", "user/tiny", "--revision", "dev", "--cache-dir", cache,
                   "--domain-dataset", "builtin:medical", "--max-steps", "1", "--seq-len", "32", "-o", tmp_path / "rec",
                   env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "rec" / "config.json").read_text())["dpruner_sparsity"]["recovery"]["steps"] == 1


def test_inspect_of_an_unreachable_hub_id_is_one_line(optimum_cli, tmp_path):
    proc = run_cli(optimum_cli, "dpruner", "inspect", "nobody/nothing-here", "--cache-dir", tmp_path)
    assert proc.returncode == 1
    error = last_line(proc.stderr)
    assert error.startswith("optimum-cli dpruner inspect: error: DIR 'nobody/nothing-here'") and "Hub" in error
