"""push_to_hub over real HTTP: the real huggingface_hub client against the loopback `FakeHub` server."""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from fake_hub import FakeHub
from optimum_dpruner import ConfigError, DPruner, DPrunerConfig, HubError, load_pretrained, push_to_hub, verify_sparsity
from optimum_dpruner.checkpoint.card import PLOT_NAME

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None  # the plot is drawn only with the `plots` extra

TOKEN = "hf_fakeWriteToken0123456789abcdef"
WRONG_TOKEN = "hf_revokedToken9876543210zyxwvu"


def _point_client_at(monkeypatch, url: str) -> None:
    """huggingface_hub reads HF_ENDPOINT at import; in this process, set the constants it derived from it too."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")


@pytest.fixture
def hub(monkeypatch):
    with FakeHub(token=TOKEN) as server:
        _point_client_at(monkeypatch, server.url)
        yield server


@pytest.fixture(scope="module")
def pruned_result(tokenizer):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=len(tokenizer), tie_word_embeddings=True,
    )
    model = AutoModelForCausalLM.from_config(config).eval()
    return DPruner(model, tokenizer, DPrunerConfig(method="magnitude", pattern="2:4")).prune(progress=False)


@pytest.fixture(scope="module")
def saved(pruned_result, tmp_path_factory):
    return pruned_result.save_pretrained(tmp_path_factory.mktemp("hub") / "tiny-pruned", base_model="me/tiny-base")


def _local_files(folder) -> dict[str, bytes]:
    return {name: open(os.path.join(folder, name), "rb").read() for name in os.listdir(folder)}


def test_push_uploads_every_file_in_one_commit_and_the_card_reads_back(hub, saved, tmp_path):
    from huggingface_hub import ModelCard, hf_hub_download

    url = push_to_hub(saved, "user/tiny-pruned", private=True, token=TOKEN)

    assert len(hub.commits) == 1
    commit = hub.commits[0]
    assert url == f"{hub.url}/user/tiny-pruned/commit/{commit['oid']}"
    assert commit["repo_id"] == "user/tiny-pruned" and commit["revision"] == "main" and not commit["create_pr"]
    assert commit["files"] == _local_files(saved)  # every file, byte for byte, in that one commit
    assert {"model.safetensors", "config.json", "dpruner_config.json", "README.md", "tokenizer.json"} <= set(commit["files"])
    assert (PLOT_NAME in commit["files"]) is HAS_MATPLOTLIB
    assert "2:4" in commit["summary"] and "magnitude" in commit["summary"]
    assert hub.repos["user/tiny-pruned"]["private"] is True
    assert all(r["headers"].get("authorization") == f"Bearer {TOKEN}" for r in hub.requests_to("/api/models/"))

    # Read the card back through the Hub's resolve route, as any user would.
    readme = hf_hub_download("user/tiny-pruned", "README.md", token=TOKEN, cache_dir=str(tmp_path / "cache"))
    card = ModelCard.load(readme)
    assert card.data.base_model == "me/tiny-base"
    assert {"pruned", "sparse", "dpruner", "2:4"} <= set(card.data.tags)
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-generation"
    assert (f"]({PLOT_NAME})" in card.text) is HAS_MATPLOTLIB and "no speed-up" in card.text


def test_push_retries_5xx_answers_and_dropped_connections(hub, saved, caplog):
    hub.fail_next(0, count=1, path_contains="/api/repos/create")  # connection closed without an answer
    hub.fail_next(503, count=2, path_contains="/commit/")
    with caplog.at_level(logging.WARNING, logger="optimum_dpruner.checkpoint.hub"):
        url = push_to_hub(saved, "user/retried", token=TOKEN, retry_wait=0.01)

    assert [r["status"] for r in hub.requests_to("/api/repos/create")] == [0, 200]
    assert [r["status"] for r in hub.requests_to("/commit/")] == [503, 503, 200]
    assert len(hub.commits) == 1 and url.endswith(hub.commits[0]["oid"])
    retries = [r.getMessage() for r in caplog.records if r.name == "optimum_dpruner.checkpoint.hub"]
    assert len(retries) == 3 and sum("HTTP 503" in m for m in retries) == 2 and "RemoteProtocolError" in retries[0]


def test_push_gives_up_after_max_retries_with_a_clear_error(hub, saved):
    hub.fail_next(502, count=10, path_contains="/commit/")
    with pytest.raises(HubError, match=r"answered 502 .* 3 times; retry later") as info:
        push_to_hub(saved, "user/down", token=TOKEN, max_retries=2, retry_wait=0.01)
    assert len(hub.requests_to("/commit/")) == 3 and hub.commits == []
    assert "\n" not in str(info.value)


def test_401_is_one_clear_line_and_the_token_never_appears(hub, saved, caplog, capfd):
    caplog.set_level(logging.DEBUG)  # every logger, huggingface_hub's included
    with pytest.raises(HubError) as info:
        push_to_hub(saved, "user/secret", token=WRONG_TOKEN, retry_wait=0.01)
    message = str(info.value)
    assert "401 Unauthorized" in message and "token=" in message and "hf auth login" in message
    assert "\n" not in message and info.value.__cause__ is None and info.value.__suppress_context__
    # the wrong token did reach the server, so its absence below is meaningful
    assert hub.requests_to("/api/repos/create")[0]["headers"]["authorization"] == f"Bearer {WRONG_TOKEN}"
    out, err = capfd.readouterr()
    for text in (message, repr(info.value), caplog.text, out, err):
        assert WRONG_TOKEN not in text
    assert hub.commits == [] and "user/secret" not in hub.repos


@pytest.mark.parametrize("repo_id", ["a/b/c", "bad repo!", "me/", "me/..", "x" * 200], ids=["three-parts", "space", "no-name", "dots", "too-long"])
def test_a_malformed_repo_id_is_a_config_error_before_any_request(hub, saved, repo_id):
    with pytest.raises(ConfigError, match=r"is not a Hub repository id; pass 'name' or 'namespace/name'"):
        push_to_hub(saved, repo_id, token=TOKEN, retry_wait=0.01)
    assert hub.requests_to("/api/repos/create") == [] and hub.commits == []


def test_403_names_the_namespace_problem(hub, saved):
    with pytest.raises(HubError, match=r"no write access to 'someone-else/model' \(403 Forbidden\)"):
        push_to_hub(saved, "someone-else/model", token=TOKEN, retry_wait=0.01)
    assert hub.commits == []


def test_push_to_a_new_branch_and_as_a_pull_request(hub, saved):
    push_to_hub(saved, "user/refs", token=TOKEN, revision="dev")
    assert hub.commits[-1]["revision"] == "dev"
    assert set(hub.repos["user/refs"]["branches"]["dev"]) == set(_local_files(saved))
    assert hub.repos["user/refs"]["branches"]["main"] == {}

    url = push_to_hub(saved, "user/refs", token=TOKEN, create_pr=True, commit_message="Pruned 2:4")
    assert url == f"{hub.url}/user/refs/discussions/2"
    assert hub.commits[-1]["create_pr"] and hub.commits[-1]["summary"] == "Pruned 2:4"
    assert hub.repos["user/refs"]["branches"]["main"] == {}  # a PR does not touch main


def test_unreachable_hub_is_retried_then_reported(monkeypatch, saved):
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _point_client_at(monkeypatch, f"http://127.0.0.1:{port}")
    with pytest.raises(HubError, match=r"could not reach the Hub at http://127\.0\.0\.1:\d+ .*ConnectError, 3 attempts"):
        push_to_hub(saved, "user/x", token=TOKEN, max_retries=2, retry_wait=0.01)


def test_prune_result_push_to_hub_then_load_pretrained_from_the_hub(hub, pruned_result, tmp_path):
    url = pruned_result.push_to_hub("user/from-result", token=TOKEN, compressed=True, base_model="me/tiny-base")
    files = hub.commits[-1]["files"]
    assert url.endswith(hub.commits[-1]["oid"])
    assert "dpruner-compressed.safetensors" in files and "model.safetensors" not in files
    assert b"library_name: optimum-dpruner" in files["README.md"] and (PLOT_NAME in files) is HAS_MATPLOTLIB

    # download (snapshot_download over the resolve route) and decompress: the same tensors come back
    restored = load_pretrained("user/from-result", token=TOKEN, cache_dir=str(tmp_path / "cache"))
    original = pruned_result.model.state_dict()
    assert all(torch.equal(t, original[k]) for k, t in restored.state_dict().items())
    assert verify_sparsity(restored).ok


_SUBPROCESS_PUSH = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(level=logging.DEBUG)
    from optimum_dpruner.checkpoint.hub import push_to_hub
    print(push_to_hub(sys.argv[1], "user/from-subprocess", retry_wait=0.01))
    """
)


def test_push_from_a_subprocess_with_hf_endpoint_and_hf_token(saved, tmp_path):
    with FakeHub(token=TOKEN) as server:
        server.fail_next(500, count=1, path_contains="/commit/")
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path)}
        proc = subprocess.run([sys.executable, "-c", _SUBPROCESS_PUSH, saved], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"{server.url}/user/from-subprocess/commit/{server.commits[0]['oid']}"
    assert server.commits[0]["files"] == _local_files(saved)
    assert TOKEN not in proc.stdout + proc.stderr and "HTTP 500" in proc.stderr
