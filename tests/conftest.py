"""Shared fixtures: tiny randomly initialised models (mechanics) and the real SmolLM2 (quality, marked slow)."""

from __future__ import annotations

import copy

import pytest
import torch

from optimum_dpruner.models.default_model import ensure_default_model

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    return ensure_default_model()


@pytest.fixture(scope="session")
def tokenizer(smollm2_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_path)


def _tiny_config(arch: str, vocab_size: int, num_layers: int = 2):
    from transformers import Gemma3TextConfig, LlamaConfig, MistralConfig, Qwen2Config

    common = dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=vocab_size,
        max_position_embeddings=512,
    )
    if arch == "llama":
        return LlamaConfig(**common)
    if arch == "qwen2":
        return Qwen2Config(**common)
    if arch == "mistral":
        return MistralConfig(**common, sliding_window=32)
    if arch == "gemma3":
        # one sliding and one full-attention layer: the blocks get different masks and position embeddings
        return Gemma3TextConfig(**common, head_dim=16, sliding_window=16, layer_types=(["sliding_attention", "full_attention"] * num_layers)[:num_layers])
    raise ValueError(arch)


ARCHS = ["llama", "qwen2", "mistral", "gemma3"]


@pytest.fixture
def make_tiny(tokenizer):
    """Build a tiny randomly initialised causal LM of an architecture, seeded."""
    from transformers import AutoModelForCausalLM

    def make(arch: str = "llama", seed: int = 0, num_layers: int = 2):
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(_tiny_config(arch, len(tokenizer), num_layers)).eval()

    return make


@pytest.fixture
def tiny_llama(make_tiny):
    return make_tiny("llama")


@pytest.fixture(scope="session")
def _smollm2_master(smollm2_path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(smollm2_path, dtype=torch.float32).eval()


@pytest.fixture
def smollm2(_smollm2_master):
    """A fresh copy of the real SmolLM2-135M-Instruct (fp32, CPU) that a test may prune."""
    return copy.deepcopy(_smollm2_master)
