"""The model card and its per-layer plot: drawn with matplotlib when it is installed, left out (with its link) when not."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from optimum_dpruner.checkpoint.card import PLOT_NAME, write_model_card
from optimum_dpruner.checkpoint.plot import per_layer_table, write_sparsity_plot

PER_MATRIX = {f"model.layers.{i}.{kind}": 0.5 + 0.01 * i for i in range(3) for kind in ("self_attn.q_proj", "mlp.up_proj")}
METADATA = {"method": "wanda", "pattern": "unstructured", "global_sparsity": 0.51, "target_sparsity": 0.5,
            "per_matrix_sparsity": PER_MATRIX}
SIDE_CAR = {"config": {"method": "wanda", "seed": 0}}
MODEL = SimpleNamespace(name_or_path="", config=SimpleNamespace(_name_or_path=""))  # no base model to look up


@pytest.fixture
def no_matplotlib(monkeypatch):
    """matplotlib as if it were not installed: every import of it raises ImportError."""
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_without_matplotlib_no_picture_and_no_link(tmp_path, no_matplotlib):
    assert write_sparsity_plot(PER_MATRIX, tmp_path / "x.png") is None and not (tmp_path / "x.png").exists()
    write_model_card(tmp_path, MODEL, METADATA, SIDE_CAR)
    assert os.listdir(tmp_path) == ["README.md"]
    text = (tmp_path / "README.md").read_text()
    assert PLOT_NAME not in text and "![" not in text
    assert "| layer | `self_attn.q_proj` | `mlp.up_proj` | mean |" in text and "| 2 | 0.520 | 0.520 | 0.520 |" in text


def test_save_pretrained_without_matplotlib_records_no_plot(tmp_path, tiny_llama, no_matplotlib):
    from optimum_dpruner import DPruner, DPrunerConfig

    folder = DPruner(tiny_llama, None, DPrunerConfig(method="magnitude")).prune(progress=False).save_pretrained(tmp_path / "out")
    assert PLOT_NAME not in os.listdir(folder)
    assert PLOT_NAME not in json.loads((tmp_path / "out" / "dpruner_config.json").read_text())["written_files"]
    assert PLOT_NAME not in (tmp_path / "out" / "README.md").read_text()


def test_with_matplotlib_the_plot_is_a_png_linked_from_the_card(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    write_model_card(tmp_path, MODEL, METADATA, SIDE_CAR)
    assert sorted(os.listdir(tmp_path)) == sorted(["README.md", PLOT_NAME])
    assert f"]({PLOT_NAME})" in (tmp_path / "README.md").read_text()
    with open(tmp_path / PLOT_NAME, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with Image.open(tmp_path / PLOT_NAME) as image:
        assert image.format == "PNG" and image.width > 300 and image.height > 200
        colours = {colour for _, colour in image.convert("RGB").getcolors(maxcolors=2**24)}
    assert (31, 119, 180) in colours and (255, 127, 14) in colours  # one colour per matrix kind (matplotlib C0, C1)


def test_per_layer_table_orders_layers_numerically():
    kinds, rows = per_layer_table({"model.layers.10.mlp": 0.1, "model.layers.2.mlp": 0.2, "lm_head": 0.0})
    assert kinds == ["mlp", "lm_head"] and [layer for layer, _ in rows] == ["2", "10", "-"]


def test_the_card_shows_the_saved_model_s_greedy_sample_under_the_perplexities(tmp_path, tiny_llama, tokenizer):
    from optimum_dpruner import DPruner, DPrunerConfig, generate_samples

    result = DPruner(tiny_llama, tokenizer, DPrunerConfig(method="magnitude")).prune(progress=False)
    prompt, evaluation = "The patient was admitted with", {"medical": {"dense": 10.0, "pruned": 12.0}}
    expected = generate_samples(result.model, tokenizer, prompt)[0]  # what the pruned model writes
    text = (Path(result.save_pretrained(tmp_path / "out", evaluation=evaluation, sample_prompt=prompt)) / "README.md").read_text()
    table, sample = text.index("| medical | 10.00 | 12.00 | +20.0 % |"), text.index(f"```text\n{expected}\n```")
    assert table < text.index(f"```text\n{prompt}\n```") < sample < text.index("## Speed and size")
    assert "`do_sample=False`, at most 32 new tokens" in text
    plain = (Path(result.save_pretrained(tmp_path / "plain", evaluation=evaluation)) / "README.md").read_text()
    assert "Greedy continuation" not in plain and "| medical |" in plain  # nothing is generated unless asked


def test_a_sample_holding_backticks_keeps_its_block():
    from optimum_dpruner.checkpoint.card import build_model_card

    sample = {"prompt": "Code:", "continuation": " ```py\nx = 1", "max_new_tokens": 8}
    card = build_model_card(METADATA, SIDE_CAR, samples=[sample], plot_file=None)
    assert "## Evaluation" in card.content and "````text\n ```py\nx = 1\n````" in card.content
