"""The one rule for "is this argument a Hub id or a local path", including the cases two older rules disagreed on."""

import os

import pytest

from optimum_dpruner.models.hub_ids import is_hub_id, is_repo_id

CASES = [
    ("HuggingFaceTB/SmolLM2-135M-Instruct", True),
    ("gpt2", True),  # the Hub serves a few ids without a namespace: the CLI's rule said yes, the card's no
    ("me/model_v1.5", True),
    ("me/.hidden", False),  # the Hub refuses a part starting with '.' or '-': the card's rule said yes
    ("me/-dash", False),
    ("me/name-", False),
    ("me/a..b", False),
    ("me/a--b", False),
    ("a/b/c", False),
    ("me/model.gguf", False),  # a .gguf is always read from disk
    ("./local", False),
    ("~/models/x", False),
    ("/abs/path", False),
    ("builtin:medical", False),
    ("", False),
    ("x" * 97, False),
]


@pytest.mark.parametrize("name,expected", CASES, ids=[c[0][:20] or "empty" for c in CASES])
def test_hub_id_rule(name, expected):
    assert is_hub_id(name) is expected


def test_an_existing_local_path_is_never_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "me").mkdir()
    (tmp_path / "me" / "model").mkdir()
    (tmp_path / "gpt2").write_text("")
    assert not is_hub_id("me/model") and not is_hub_id("gpt2")
    assert is_repo_id("me/model") and is_repo_id("gpt2")  # still written as a repo id (a push target)
    assert os.path.isdir("me/model")


def test_the_cli_the_card_and_the_loader_use_the_same_rule():
    from optimum_dpruner.checkpoint import base_model, card, serialization
    from optimum_dpruner.cli import prune

    assert prune.is_hub_id is base_model.is_hub_id is card.is_hub_id is serialization.is_hub_id is is_hub_id
