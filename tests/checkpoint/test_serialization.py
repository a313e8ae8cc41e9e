"""Saving pruned models: plain transformers round trip, compressed storage, atomic saves, verify_sparsity, model card."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from optimum_dpruner import DPruner, DPrunerConfig, load_pretrained, verify_sparsity
from optimum_dpruner.checkpoint.card import PLOT_NAME, build_model_card
from optimum_dpruner.errors import ConfigError
from optimum_dpruner.checkpoint.compression import pack_bitmask, unpack_bitmask
from optimum_dpruner.checkpoint.metadata import SPARSITY_KEY

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None  # the plot is drawn only with the `plots` extra


def _prune(model, tokenizer=None, general=None, **options):
    pruner = DPruner(model, tokenizer, DPrunerConfig(**{"method": "magnitude", **options}))
    return pruner.prune(general, progress=False)


def _small_vocab_llama(seed: int = 0, dtype=torch.float32):
    """Embeddings small next to the target matrices, so that the size of the targets dominates the checkpoint."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=128
    )
    return AutoModelForCausalLM.from_config(config).to(dtype).eval()


def _weights_bytes(folder) -> int:
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder) if f.endswith(".safetensors"))


def _zero_patterns(model, names) -> dict[str, torch.Tensor]:
    return {n: model.get_submodule(n).weight.eq(0) for n in names}


_PLAIN_LOAD = textwrap.dedent(
    """
    import json, sys, torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    folder, resaved, out = sys.argv[1:4]
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert not any(m.startswith("optimum_dpruner") for m in sys.modules), "the plugin was imported"
    ids = tokenizer("The heart pumps blood through the arteries.", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    model.save_pretrained(resaved)
    torch.save({"ids": ids, "logits": logits}, out)
    """
)


def test_save_loads_in_plain_transformers_with_identical_logits_and_zeros(tmp_path, tiny_llama, tokenizer):
    result = _prune(tiny_llama, tokenizer, "builtin:general", method="wanda", num_samples=2, seq_len=32)
    folder = result.save_pretrained(tmp_path / "pruned")

    # A fresh interpreter that never imports optimum_dpruner loads it, computes logits and re-saves it.
    proc = subprocess.run(
        [sys.executable, "-c", _PLAIN_LOAD, folder, str(tmp_path / "resaved"), str(tmp_path / "out.pt")],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = torch.load(tmp_path / "out.pt")
    with torch.no_grad():
        expected = result.model(out["ids"]).logits
    assert torch.equal(out["logits"], expected)

    from transformers import AutoModelForCausalLM

    names = sorted(result.report.matrices)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "resaved")
    before, after = _zero_patterns(result.model, names), _zero_patterns(reloaded, names)
    assert all(torch.equal(before[n], after[n]) for n in names)
    assert all(torch.equal(a, b) for a, b in zip(result.model.state_dict().values(), reloaded.state_dict().values()))

    config = json.loads((tmp_path / "pruned" / "config.json").read_text())
    meta = config[SPARSITY_KEY]
    assert "quantization_config" not in config
    assert meta["method"] == "wanda" and meta["pattern"] == "unstructured" and meta["format"] == "dense"
    assert meta["targets"] == names and len(names) == 14
    assert meta["per_matrix_sparsity"] == {n: round(m.sparsity, 6) for n, m in result.report.matrices.items()}
    assert abs(meta["global_sparsity"] - 0.5) < 1e-3
    # the block survives a plain transformers load -> save round trip
    assert json.loads((tmp_path / "resaved" / "config.json").read_text())[SPARSITY_KEY] == meta

    side_car = json.loads((tmp_path / "pruned" / "dpruner_config.json").read_text())
    assert side_car["config"]["method"] == "wanda" and side_car["format"] == "dense"
    assert {"torch", "transformers", "safetensors"} <= set(side_car["library_versions"])
    general = side_car["calibration"]["general"]
    assert general["source"] == "builtin:general" and general["num_samples"] == 2 and general["seq_len"] == 32
    assert len(general["sha256"]) == 64
    assert side_car["config"]["add_bos"] == "auto" and general["add_bos"] is False and general["bos_token_id"] is None
    assert {"README.md", "tokenizer.json", "model.safetensors"} <= set(os.listdir(folder))
    assert (PLOT_NAME in os.listdir(folder)) is HAS_MATPLOTLIB
    assert set(os.listdir(tmp_path)) == {"pruned", "resaved", "out.pt"}  # no temporary folder left behind


@pytest.mark.parametrize("add_bos", ["auto", False])
def test_calibration_fingerprint_records_the_bos_of_the_windows(make_tiny, add_bos):
    import hashlib

    from bos_tokenizer import bos_tokenizer
    from optimum_dpruner.data.calibration import calibration_samples

    tok = bos_tokenizer()  # adds a BOS, so "auto" starts every window with it
    result = _prune(make_tiny("llama"), tok, "builtin:general", method="wanda", num_samples=2, seq_len=16, add_bos=add_bos)
    general = result.report.extra["calibration"]["general"]
    windows = calibration_samples("builtin:general", tok, 2, 16, seed=0, add_bos=add_bos)
    digest = hashlib.sha256()
    for w in windows:
        digest.update(w.numpy().tobytes())
    assert general["sha256"] == digest.hexdigest() and general["seq_len"] == 16
    assert (general["add_bos"], general["bos_token_id"]) == ((True, tok.bos_token_id) if add_bos == "auto" else (False, None))
    assert all((int(w[0, 0]) == tok.bos_token_id) == general["add_bos"] for w in windows)


@pytest.mark.parametrize("pattern,dtype", [("unstructured", torch.float32), ("2:4", torch.bfloat16)], ids=["unstructured-fp32", "2:4-bf16"])
def test_compressed_storage_is_smaller_and_restores_the_same_model(tmp_path, pattern, dtype):
    from transformers import AutoModelForCausalLM

    result = _prune(_small_vocab_llama(dtype=dtype), pattern=pattern)
    dense = result.save_pretrained(tmp_path / "dense")
    compressed = result.save_pretrained(tmp_path / "compressed", compressed=True)

    ratio = _weights_bytes(compressed) / _weights_bytes(dense)
    print(f"compressed/dense weight bytes ({pattern}, {dtype}): {ratio:.3f}")
    assert ratio < 0.7  # targets: (0.5 x itemsize + 1/8) / itemsize; embeddings and norms stay dense
    assert not any(f.startswith("model") and f.endswith(".safetensors") for f in os.listdir(compressed))
    meta = json.loads((tmp_path / "compressed" / "config.json").read_text())[SPARSITY_KEY]
    assert meta["format"] == "bitmask" and meta["files"] == ["dpruner-compressed.safetensors"]

    # Plain transformers refuses the folder loudly instead of initialising the missing weights at random.
    with pytest.raises(OSError):
        AutoModelForCausalLM.from_pretrained(compressed)

    restored = load_pretrained(compressed)
    assert restored.dtype == dtype
    # the reference is what plain transformers loads from the dense save (a model cast with .to(bf16) keeps
    # bf16 rotary buffers, a loaded one computes them in fp32)
    reference = AutoModelForCausalLM.from_pretrained(dense, dtype=dtype).eval()
    ids = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(restored(ids).logits, reference(ids).logits)
    original = result.model.state_dict()
    assert set(restored.state_dict()) == set(original)
    assert all(torch.equal(t, original[k]) for k, t in restored.state_dict().items())
    assert restored.config.dpruner_sparsity["format"] == "dense"  # a re-save with transformers is dense
    assert verify_sparsity(compressed).ok and verify_sparsity(restored).ok
    card = (tmp_path / "compressed" / "README.md").read_text()
    assert "library_name: optimum-dpruner" in card and "load_pretrained" in card


@pytest.mark.parametrize("numel", [1, 7, 8, 9, 64, 1001])
def test_bitmask_is_numpy_packbits_layout_and_round_trips(numel):
    mask = torch.rand(numel, generator=torch.Generator().manual_seed(numel)) > 0.5
    packed = pack_bitmask(mask)
    assert packed.dtype == torch.uint8
    assert packed.numpy().tobytes() == np.packbits(mask.numpy()).tobytes()
    assert torch.equal(unpack_bitmask(packed, numel), mask)


def test_existing_folder_is_kept_unless_overwrite(tmp_path, tiny_llama):
    pruner = DPruner(tiny_llama, None, DPrunerConfig(method="magnitude"))
    with pytest.raises(ConfigError, match="prune"):
        pruner.save_pretrained(tmp_path / "out")
    pruner.prune(progress=False)
    target = tmp_path / "out"
    pruner.save_pretrained(target, model_card=False)
    before = sorted(os.listdir(target))
    with pytest.raises(ConfigError, match="overwrite=True"):
        pruner.save_pretrained(target)
    assert sorted(os.listdir(target)) == before
    pruner.save_pretrained(target, overwrite=True)  # a checkpoint written by the library is replaced
    assert "README.md" in os.listdir(target) and (target / "model.safetensors").exists()
    assert json.loads((target / "dpruner_config.json").read_text())["written_files"] == sorted(os.listdir(target))
    assert os.listdir(tmp_path) == ["out"]  # no temporary or old folder left behind
    empty = tmp_path / "empty"
    empty.mkdir()
    pruner.save_pretrained(empty, overwrite=True, model_card=False)  # so is an empty folder
    assert (empty / "model.safetensors").exists()


_SLOW_SAVE = textwrap.dedent(
    """
    import sys, torch
    from transformers import AutoModelForCausalLM, LlamaConfig
    from optimum_dpruner import DPruner, DPrunerConfig
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=512, intermediate_size=1536, num_hidden_layers=2, num_attention_heads=8,
                         num_key_value_heads=8, vocab_size=32000)
    model = AutoModelForCausalLM.from_config(config).eval()
    result = DPruner(model, None, DPrunerConfig(method="magnitude")).prune(progress=False)
    print("saving", flush=True)
    result.save_pretrained(sys.argv[1], overwrite=True, compressed=True)
    print("saved", flush=True)
    """
)


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "overwrite"])
def test_sigkill_during_save_leaves_no_complete_looking_folder(tmp_path, existing):
    target = tmp_path / "model"
    if existing:  # a complete earlier save must survive a killed overwrite untouched
        _prune(_small_vocab_llama()).save_pretrained(target, model_card=False)
        earlier = {name: (target / name).read_bytes() for name in os.listdir(target)}
    child = subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, str(target)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline, killed_in = time.monotonic() + 300, None
    try:
        while time.monotonic() < deadline and child.poll() is None:
            partial = [d for d in os.listdir(tmp_path) if d.startswith(".model.tmp-")]
            # config.json is written first and the weights after it: kill once the save is under way
            if partial and os.path.exists(tmp_path / partial[0] / "config.json"):
                os.kill(child.pid, signal.SIGKILL)
                killed_in = sorted(os.listdir(tmp_path / partial[0]))
                break
            time.sleep(0.002)
    finally:
        if child.poll() is None:
            child.kill()
        _, err = child.communicate(timeout=60)
    assert killed_in is not None, f"the child finished before it could be killed (rc={child.returncode}): {err[-2000:]!r}"
    assert child.returncode == -signal.SIGKILL
    assert "dpruner_config.json" not in killed_in  # killed mid-save, before the last file
    if existing:
        assert {name: (target / name).read_bytes() for name in os.listdir(target)} == earlier
    else:
        assert not target.exists()
    # whatever is left is hidden and named as temporary: nothing that a loader would pick up as a model
    leftovers = [d for d in os.listdir(tmp_path) if d != "model"]
    assert leftovers and all(d.startswith(".model.tmp-") for d in leftovers)


# ----------------------------------------------------------------------------------------------- overwrite safety
def _snapshot(folder) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(root, f), folder): open(os.path.join(root, f), "rb").read()
            for root, _, files in os.walk(folder) for f in files}


def test_overwrite_never_deletes_files_the_library_did_not_write(tmp_path, tiny_llama, monkeypatch):
    result = _prune(tiny_llama)
    # a folder of the user's, a checkpoint with one foreign file added, and one with a foreign sub-folder
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("four years of work")
    mixed = tmp_path / "mixed"
    result.save_pretrained(mixed, model_card=False)
    (mixed / "my_eval.json").write_text("{}")
    nested = tmp_path / "nested"
    result.save_pretrained(nested, model_card=False)
    (nested / ".git").mkdir()
    for folder, message in ((notes, "not a checkpoint written by optimum-dpruner"),
                            (mixed, r"holds files optimum-dpruner did not write \(my_eval.json\)"),
                            (nested, r"did not write \(.git\)")):
        before = _snapshot(folder)
        with pytest.raises(ConfigError, match=message):
            result.save_pretrained(folder, overwrite=True)
        assert _snapshot(folder) == before
    # never the current directory or a parent of it, even when it is a checkpoint
    work = tmp_path / "work"
    result.save_pretrained(work, model_card=False)
    (work / "sub").mkdir()
    monkeypatch.chdir(work / "sub")
    with pytest.raises(ConfigError, match="current directory or a parent of it"):
        result.save_pretrained(work, overwrite=True)
    monkeypatch.chdir(work)
    with pytest.raises(ConfigError, match="current directory or a parent of it"):
        result.save_pretrained(".", overwrite=True)
    assert (work / "sub").is_dir() and (work / "model.safetensors").exists()
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        result.save_pretrained(work / "config.json", overwrite=True)


def test_a_side_car_without_the_file_list_is_never_replaced(tmp_path, tiny_llama, tokenizer):
    """Every save of this library lists its files; a folder whose side car does not is not ours to delete."""
    result = _prune(tiny_llama, tokenizer)
    unlisted = tmp_path / "unlisted"
    result.save_pretrained(unlisted)
    side_car = json.loads((unlisted / "dpruner_config.json").read_text())
    del side_car["written_files"]
    (unlisted / "dpruner_config.json").write_text(json.dumps(side_car))
    before = _snapshot(unlisted)
    with pytest.raises(ConfigError, match=r"is not a checkpoint written by optimum-dpruner \(no dpruner_config.json listing"):
        result.save_pretrained(unlisted, overwrite=True)
    assert _snapshot(unlisted) == before


def test_overwrite_never_replaces_the_folder_the_model_was_loaded_from(tmp_path, tiny_llama, tokenizer):
    folder = _prune(tiny_llama).save_pretrained(tmp_path / "pruned", model_card=False)
    before = _snapshot(folder)
    pruner = DPruner.from_pretrained(folder, config=DPrunerConfig(method="magnitude", sparsity=0.6))
    result = pruner.prune(progress=False)
    with pytest.raises(ConfigError, match="holds the model being pruned"):
        result.save_pretrained(folder, overwrite=True)
    assert _snapshot(folder) == before


def _filesystem_exchanges(folder) -> bool:
    from optimum_dpruner.checkpoint.folders import _exchange

    (folder / "a").mkdir()
    (folder / "b").mkdir()
    try:
        return _exchange(str(folder / "a"), str(folder / "b"))
    finally:
        os.rmdir(folder / "a")
        os.rmdir(folder / "b")


def _no_renameat2(*args, **kwargs):
    raise OSError("no libc here")  # as on a system without renameat2 (macOS): the two-rename fallback


@pytest.mark.parametrize("atomic_exchange", [True, False], ids=["renameat2", "two-renames"])
def test_interrupted_overwrite_leaves_a_complete_checkpoint_in_place(tmp_path, atomic_exchange, monkeypatch):
    target = tmp_path / "out"
    old = _prune(_small_vocab_llama(seed=0)).save_pretrained(target, model_card=False)
    before = _snapshot(old)
    new = _prune(_small_vocab_llama(seed=1), sparsity=0.7)
    # where the filesystem refuses RENAME_EXCHANGE, the library must fall back to the two renames: expect that path
    exchanged = atomic_exchange and _filesystem_exchanges(tmp_path)
    if not atomic_exchange:
        import ctypes

        monkeypatch.setattr(ctypes, "CDLL", _no_renameat2)
    real_replace = os.replace

    def interrupted_replace(src, dst):  # Ctrl-C just as the new folder would take the old one's place
        if os.path.basename(os.fspath(src)).startswith(".out.tmp-"):
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted_replace)
    try:
        new.save_pretrained(target, overwrite=True, model_card=False)
    except KeyboardInterrupt:
        assert not exchanged, "the atomic exchange has no second rename to interrupt"
        assert _snapshot(target) == before  # the old checkpoint is back in place
    else:
        assert exchanged
        assert verify_sparsity(str(target)).ok and json.loads((target / "config.json").read_text())[SPARSITY_KEY]["target_sparsity"] == 0.7
    assert os.listdir(tmp_path) == ["out"]  # no hidden .out.old-* or .out.tmp-* copy left


def test_unwritable_output_fails_before_anything_is_written(tmp_path, tiny_llama, monkeypatch):
    import shutil

    result = _prune(tiny_llama)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"is under '.*file.txt', which is a file"):
        result.save_pretrained(tmp_path / "file.txt" / "out")
    # a full disk: fewer free bytes than the weights need
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1000))
    with pytest.raises(ConfigError, match="MiB free, but the checkpoint needs about"):
        result.save_pretrained(tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["file.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_refused(tmp_path, tiny_llama):
    result = _prune(tiny_llama)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(ConfigError, match="is not writable"):
        result.save_pretrained(locked / "out")


def _merge_lora(linear: torch.nn.Linear, rank: int = 4, seed: int = 0) -> None:
    """Fold a LoRA adapter into the weight: W <- W + B @ A, what peft's merge_and_unload computes."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(rank, linear.in_features, generator=g) * 0.01
    b = torch.randn(linear.out_features, rank, generator=g) * 0.01
    with torch.no_grad():
        linear.weight += b @ a


def test_verify_sparsity_reports_matrices_densified_by_a_lora_merge(tmp_path, tiny_llama):
    result = _prune(tiny_llama, sparsity=0.5)
    folder = result.save_pretrained(tmp_path / "pruned", model_card=False)
    for subject in (folder, result.model):
        check = verify_sparsity(subject)
        assert check.ok and not check.problems and len(check.rows) == 14
        assert all(abs(r.actual - 0.5) < 1e-3 for r in check.rows)

    merged = ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"]
    for name in merged:
        _merge_lora(result.model.get_submodule(name))
    result.model.save_pretrained(tmp_path / "merged")  # a plain re-save keeps the metadata
    for subject in (result.model, str(tmp_path / "merged")):
        check = verify_sparsity(subject)
        assert not check.ok
        assert [p.split(":")[0] for p in check.problems] == merged
        assert all("< recorded 0.5000" in p for p in check.problems)
        lost = {r.name for r in check.rows if not r.ok}
        assert lost == set(merged) and all(r.actual < 0.01 for r in check.rows if r.name in lost)
        assert check.table().count("LOST") == 2


def test_verify_sparsity_catches_a_broken_nm_pattern_with_the_same_count(tiny_llama):
    result = _prune(tiny_llama, pattern="2:4")
    assert verify_sparsity(result.model).ok
    weight = result.model.get_submodule("model.layers.0.mlp.up_proj").weight
    with torch.no_grad():
        groups = weight.view(-1, 4)
        zero = int(groups[0].eq(0).nonzero()[0])  # group 0 loses a zero...
        kept = int(groups[1].ne(0).nonzero()[0])  # ...group 1 gains one: same count, broken pattern
        groups[0, zero], groups[1, kept] = 1.0, 0.0
    check = verify_sparsity(result.model)
    assert not check.ok and len(check.problems) == 1
    row = next(r for r in check.rows if not r.ok)
    assert row.name == "model.layers.0.mlp.up_proj" and row.nm_violations == 1 and row.actual == pytest.approx(0.5)
    assert "break the 2:4 pattern" in check.problems[0] and "recorded" not in check.problems[0]


def test_verify_sparsity_without_metadata_says_so(tiny_llama):
    check = verify_sparsity(tiny_llama)
    assert not check.ok and "dpruner_sparsity" in check.problems[0]


def test_verify_sparsity_compares_against_the_requested_sparsity(tmp_path, tiny_llama):
    """The metadata of an under-pruned run records what was achieved (0.25); the request (0.5) is what counts."""
    result = _prune(tiny_llama, sparsity=0.25)
    folder = result.save_pretrained(tmp_path / "pruned", model_card=False)
    config = json.loads((tmp_path / "pruned" / "config.json").read_text())
    config[SPARSITY_KEY]["target_sparsity"] = 0.5  # what a run asked for 0.5 and reached 0.25 wrote on main
    (tmp_path / "pruned" / "config.json").write_text(json.dumps(config))
    check = verify_sparsity(folder)
    assert not check.ok and len(check.problems) == 14
    assert all("< requested 0.5000" in p for p in check.problems) and all(r.requested == 0.5 for r in check.rows)
    # exact zeros already in the weights (a GGUF dequantisation) give more than asked: fine
    config[SPARSITY_KEY]["target_sparsity"] = 0.2
    (tmp_path / "pruned" / "config.json").write_text(json.dumps(config))
    assert verify_sparsity(folder).ok


def test_verify_sparsity_rejects_what_it_cannot_read(tmp_path, tiny_llama):
    from optimum_dpruner.errors import CheckpointError

    with pytest.raises(ConfigError, match=r"model_or_dir=123 \(a int\) is neither a model nor a folder"):
        verify_sparsity(123)
    folder = _prune(tiny_llama).save_pretrained(tmp_path / "pruned", model_card=False)
    weights = tmp_path / "pruned" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"model.safetensors' is truncated or corrupt"):
        verify_sparsity(folder)
    (tmp_path / "pruned" / "config.json").write_text('{"dpruner_sparsity": ')
    with pytest.raises(CheckpointError, match=r"config.json' is not valid JSON"):
        verify_sparsity(folder)


def test_model_card_carries_hub_metadata_table_plot_and_speed_note(tmp_path, make_tiny, tokenizer):
    from huggingface_hub import ModelCard

    base = tmp_path / "base"
    make_tiny("llama").save_pretrained(base)
    (base / "README.md").write_text("---\nlicense: mit\nlanguage: en\n---\n# tiny base\n")
    pruner = DPruner.from_pretrained(str(base), DPrunerConfig(method="wanda", num_samples=2, seq_len=32), tokenizer=tokenizer)
    result = pruner.prune("builtin:general", progress=False)
    evaluation = {"general (Wikipedia test)": {"dense": 10.0, "pruned": 12.5}}
    folder = result.save_pretrained(tmp_path / "pruned", base_model="me/tiny-base", evaluation=evaluation)

    card = ModelCard.load(os.path.join(folder, "README.md"))
    assert card.data.base_model == "me/tiny-base"
    assert card.data.license == "mit" and card.data.language == "en"  # inherited from the base model's card
    assert {"pruned", "sparse", "dpruner", "unstructured"} <= set(card.data.tags)
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-generation"
    assert "quantization" not in card.content
    text = card.text
    assert (f"]({PLOT_NAME})" in text) is HAS_MATPLOTLIB  # the picture is linked only when it was drawn
    assert "| layer | `self_attn.q_proj` |" in text and "| 0 | 0.500 |" in text and "| 1 | 0.500 |" in text
    assert "no speed-up" in text
    assert "2 sequences x 32 tokens" in text and "Seed: 0" in text
    assert "| general (Wikipedia test) | 10.00 | 12.50 | +25.0 % |" in text
    assert json.loads((tmp_path / "pruned" / "dpruner_config.json").read_text())["base_model"] == "me/tiny-base"


    no_eval = _prune(make_tiny("llama"), sparsity=0.5).save_pretrained(tmp_path / "plain")
    no_eval_card = ModelCard.load(os.path.join(no_eval, "README.md"))
    assert "## Evaluation" not in no_eval_card.text and "uses no data" in no_eval_card.text
    assert no_eval_card.data.license is None and no_eval_card.data.base_model is None


def test_card_lists_hub_datasets_only():
    meta = {"method": "dpruner", "pattern": "2:4", "global_sparsity": 0.5, "per_matrix_sparsity": {"model.layers.0.mlp.up_proj": 0.5}}
    side_car = {
        "config": {"seed": 3},
        "calibration": {
            "general": {"source": "builtin:general", "num_samples": 4, "seq_len": 64, "sha256": "a" * 64},
            "domain": {"source": "org/medical-notes", "num_samples": 2, "seq_len": 64, "sha256": "b" * 64},
        },
    }
    card = build_model_card(meta, side_car, base_model="org/base")
    assert card.data.datasets == ["org/medical-notes"]
    assert "2:4" in card.data.tags and "Seed: 3" in card.text


def test_card_names_the_dpruner_recipe():
    meta = {"method": "dpruner", "pattern": "unstructured", "global_sparsity": 0.5,
            "per_matrix_sparsity": {"model.layers.0.mlp.up_proj": 0.5}}

    def line(config):
        text = build_model_card(meta, {"config": {"method": "dpruner", **config}}).text
        return next(x for x in text.splitlines() if x.startswith("- D-Pruner:"))

    default = line(DPrunerConfig().to_dict())
    assert "OBS saliency x (domain importance I / mean)^1.0" in default and "OBS update of the surviving" in default
    paper = line(DPrunerConfig.paper().to_dict())
    assert "lowest domain importance I; no weight update; general stage `sparsegpt`, lambda 0.1" in paper
    wanda = build_model_card({**meta, "method": "wanda"}, {"config": {"method": "wanda"}}).text
    assert "- D-Pruner:" not in wanda


def _edit_metadata(folder, **changes):
    path = os.path.join(folder, "config.json")
    config = json.load(open(path))
    for key, value in changes.items():
        if key == "per_matrix":
            name = next(iter(config[SPARSITY_KEY]["per_matrix_sparsity"]))
            config[SPARSITY_KEY]["per_matrix_sparsity"][name] = value
        else:
            config[SPARSITY_KEY][key] = value
    open(path, "w").write(json.dumps(config))  # json writes float("nan") as NaN, which it reads back


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"pattern": "abc"}, r"config.json's dpruner_sparsity has pattern='abc', not 'unstructured' or 'N:M' with integers N < M; restore"),
        ({"target_sparsity": float("nan")}, r"has target_sparsity=nan, not a number in \[0, 1\]"),
        ({"per_matrix": "half"}, r"has per_matrix_sparsity\['model.layers.0.mlp.down_proj'\]='half', not a number in \[0, 1\]"),
    ],
    ids=["pattern-abc", "target-nan", "per-matrix-half"],
)
def test_verify_sparsity_names_tampered_metadata(tmp_path, tiny_llama, changes, message):
    """Issue 31: these raised a bare ValueError (int('abc'), math.floor(nan), float('half'))."""
    from optimum_dpruner.errors import CheckpointError

    folder = _prune(tiny_llama).save_pretrained(tmp_path / "pruned", model_card=False)
    _edit_metadata(folder, **changes)
    with pytest.raises(CheckpointError, match=message):
        verify_sparsity(folder)


def test_verify_sparsity_looks_at_nan_weights_and_the_global_sparsity(tmp_path, tiny_llama):
    """Issue 31: a checkpoint holding a NaN weight passed (the zeros were all there); a tampered global_sparsity
    (what evaluate and the card print) was never compared with the weights."""
    from safetensors.torch import load_file, save_file

    folder = _prune(tiny_llama).save_pretrained(tmp_path / "pruned", model_card=False)
    assert verify_sparsity(folder).ok
    _edit_metadata(folder, global_sparsity=0.9)
    check = verify_sparsity(folder)
    assert not check.ok and check.problems == [
        "global_sparsity 0.9000 is recorded, but the target matrices hold 0.5000 zeros: the metadata was edited or "
        "belongs to other weights"]
    _edit_metadata(folder, global_sparsity=0.4)  # fewer than there are: not a false claim
    assert verify_sparsity(folder).ok
    weights = os.path.join(folder, "model.safetensors")
    tensors = load_file(weights)
    tensors["model.layers.0.mlp.up_proj.weight"][3, 5] = float("nan")  # a kept weight (or a zero: both are broken)
    save_file(tensors, weights, metadata={"format": "pt"})
    check = verify_sparsity(folder)
    assert not check.ok
    assert any(p.startswith("model.layers.0.mlp.up_proj: holds 1 NaN and 0 inf values (of 8192)") for p in check.problems), check.problems
