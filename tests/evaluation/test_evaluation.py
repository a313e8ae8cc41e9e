"""Evaluation: perplexity, metrics and the downstream tasks, on cases whose answer is known by construction."""

from __future__ import annotations

import math

import pytest
import torch

from bos_tokenizer import bos_tokenizer, metaspace_tokenizer
from optimum_dpruner.errors import ConfigError, DataError, DPrunerWarning
from optimum_dpruner.evaluation import (
    accuracy,
    billsum,
    casehold,
    evaluate_perplexity,
    evaluate_task,
    load_task_records,
    macro_f1,
    perplexity,
    pubmedqa,
    rouge,
    tokenize_corpus,
    tokenize_documents,
)
from optimum_dpruner.evaluation.choice import ChoiceItem, choice_logprobs, pair_ids
from optimum_dpruner.evaluation.scoring import continuation_logprobs, greedy_generate
from optimum_dpruner.evaluation.uncertainty import bootstrap_interval, mean_statistic, perplexity_statistic


def _uniform(model):
    """All logits zero: every token has probability 1 / vocabulary size, every choice ties."""
    with torch.no_grad():
        model.get_output_embeddings().weight.zero_()
    return model


# ----------------------------------------------------------------------------------------------- perplexity
@pytest.mark.parametrize("stride", [None, 16])
def test_perplexity_of_a_uniform_model_is_the_vocabulary_size(make_tiny, tokenizer, stride):
    model = _uniform(make_tiny("llama"))
    ppl = perplexity(model, tokenizer, "builtin:general", window=32, stride=stride, limit=3, progress=False)
    assert ppl == pytest.approx(model.config.vocab_size, rel=1e-5)


@torch.no_grad()
def test_strided_perplexity_scores_each_token_once_with_its_window_context(tiny_llama, tokenizer):
    window, stride, limit = 32, 16, 4
    ids = tokenize_corpus("builtin:medical", tokenizer, max_tokens=window + (limit - 1) * stride)
    # independent reference: token p is scored in the first window that holds it at a position > 0
    nll = []
    for p in range(1, len(ids)):
        start = max(0, math.ceil((p - window + 1) / stride) * stride)
        logits = tiny_llama(input_ids=ids[start : start + window].unsqueeze(0)).logits[0]
        nll.append(-torch.log_softmax(logits[p - start - 1], -1)[ids[p]].item())
    expected = math.exp(sum(nll) / len(nll))
    got = perplexity(tiny_llama, tokenizer, "builtin:medical", window=window, stride=stride, limit=limit, progress=False)
    assert got == pytest.approx(expected, rel=1e-5)
    # the per-window parts: every token once, in windows of 31 then 16 new tokens; the interval holds the value
    result = evaluate_perplexity(tiny_llama, tokenizer, "builtin:medical", window=window, stride=stride, limit=limit, progress=False)
    assert result.window_tokens == [31, 16, 16, 16] and sum(result.window_nll) == pytest.approx(sum(nll), rel=1e-5)
    assert result.perplexity == got and result.low < got < result.high


def test_spread_windows_are_the_full_run_s_windows_at_even_steps(tiny_llama, tokenizer):
    texts = [" ".join(f"word{k} of document {d}." for k in range(60)) for d in range(3)]
    full = evaluate_perplexity(tiny_llama, tokenizer, texts, window=32, progress=False)
    spread = evaluate_perplexity(tiny_llama, tokenizer, texts, window=32, limit=4, spread=True, progress=False)
    first = evaluate_perplexity(tiny_llama, tokenizer, texts, window=32, limit=4, progress=False)
    step = full.windows / 4
    assert spread.window_nll == pytest.approx([full.window_nll[int(k * step)] for k in range(4)], rel=1e-5)
    assert first.window_nll == pytest.approx(full.window_nll[:4], rel=1e-5) and step > 1


@torch.no_grad()
@pytest.mark.parametrize("stride", [None, 12], ids=["non-overlapping", "strided"])
def test_perplexity_with_bos_scores_every_text_token_once_after_a_bos(tiny_llama, stride):
    tok = bos_tokenizer()  # adds a BOS: every window is [BOS] + window - 1 text tokens
    bos, window, limit = tok.bos_token_id, 32, 4
    span = window - 1
    step = stride or span
    ids = tokenize_corpus("builtin:medical", tok, max_tokens=span + (limit - 1) * step)
    # independent reference: text token p (p >= 0) is scored once, in the first window holding it, after a BOS
    nll, shapes = [], set()
    for p in range(len(ids)):
        start = max(0, math.ceil((p - span + 1) / step) * step)
        chunk = torch.cat([torch.tensor([bos]), ids[start : start + span]])
        shapes.add(len(chunk))
        logits = tiny_llama(input_ids=chunk.unsqueeze(0)).logits[0]
        nll.append(-torch.log_softmax(logits[p - start], -1)[ids[p]].item())
    assert len(nll) == len(ids) and shapes == {window}
    expected = math.exp(sum(nll) / len(nll))
    got = perplexity(tiny_llama, tok, "builtin:medical", window=window, stride=stride, limit=limit, progress=False)
    assert got == pytest.approx(expected, rel=1e-5)
    assert got != perplexity(tiny_llama, tok, "builtin:medical", window=window, stride=stride, limit=limit, progress=False,
                             add_bos=False)


@pytest.mark.parametrize("with_bos", [False, True], ids=["no-bos", "bos"])
def test_document_resampling_knows_each_window_s_document(tiny_llama, tokenizer, with_bos):
    tok = bos_tokenizer() if with_bos else tokenizer  # SmolLM2's adds no BOS
    texts = [" ".join(f"word{k} of document {d}." for k in range(n)) for d, n in enumerate((40, 5, 70))]
    lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    separator = len(tok("\n\n", add_special_tokens=False)["input_ids"])
    ids, starts = tokenize_documents(texts, tok)
    assert starts == [0, lengths[0] + separator, lengths[0] + lengths[1] + 2 * separator] and len(ids) == sum(lengths) + 2 * separator
    windows = evaluate_perplexity(tiny_llama, tok, texts, window=32, stride=20, progress=False)
    with pytest.warns(DPrunerWarning, match="the windows come from 3 documents"):
        documents = evaluate_perplexity(tiny_llama, tok, texts, window=32, stride=20, progress=False, resample_by="documents")
    # independent reference: the first text token a window scores, and the document that holds it
    span = 31 if with_bos else 32  # text tokens per window; windows overlap by span - 20
    first = [0 if with_bos else 1] + [b + span - 20 for b in range(20, 20 * windows.windows, 20)]
    expected = [sum(p >= s for s in starts) - 1 for p in first]
    assert windows.window_documents == documents.window_documents == expected and set(expected) == {0, 1, 2}
    assert documents.perplexity == windows.perplexity and documents.resample_by == "documents" and documents.documents == 3
    per_document = {}
    for d, nll, n in zip(expected, windows.window_nll, windows.window_tokens):
        per_document[d] = [per_document.get(d, [0.0, 0])[0] + nll, per_document.get(d, [0.0, 0])[1] + n]
    reference = bootstrap_interval(perplexity_statistic(*zip(*per_document.values())), 3)
    assert (documents.low, documents.high) == pytest.approx(reference) and (documents.low, documents.high) != (windows.low, windows.high)
    with pytest.raises(ConfigError, match="resample_by='articles' must be one of 'windows', 'documents'"):
        evaluate_perplexity(tiny_llama, tok, texts, window=32, progress=False, resample_by="articles")
    # too few documents: the first two windows lie in the first document; three documents are rough
    with pytest.raises(DataError, match=r"from 1 document; .* or spread them \(spread=True\)"):
        evaluate_perplexity(tiny_llama, tok, texts, window=32, limit=2, progress=False, resample_by="documents")
    with pytest.warns(DPrunerWarning, match=r"the windows come from [23] documents; an interval over so few is rough") as caught:
        evaluate_perplexity(tiny_llama, tok, texts, window=32, limit=6, spread=True, progress=False, resample_by="documents")
    assert caught[0].filename == __file__  # the warning points at the caller


def test_perplexity_auto_adds_no_bos_for_smollm2(tiny_llama, tokenizer):
    args = dict(window=32, stride=16, limit=3, progress=False)
    auto = perplexity(tiny_llama, tokenizer, "builtin:general", **args)
    assert auto == perplexity(tiny_llama, tokenizer, "builtin:general", add_bos=False, **args)
    assert auto != perplexity(tiny_llama, tokenizer, "builtin:general", add_bos=True, **args)


def test_perplexity_stride_must_fit_the_text_after_a_bos(tiny_llama):
    with pytest.raises(ConfigError, match=r"stride=32 must be in \[1, 31\]: window=32 holds a BOS and 31 text tokens"):
        perplexity(tiny_llama, bos_tokenizer(), "builtin:medical", window=32, stride=32, limit=1, progress=False)


# ----------------------------------------------------------------------------------------------- metrics
def test_macro_f1_and_accuracy_on_fixed_predictions():
    predictions = ["a", "a", "b", "c"]
    references = ["a", "b", "b", "c"]
    # a: tp 1 fp 1 fn 0 -> 2/3; b: tp 1 fp 0 fn 1 -> 2/3; c: 1
    assert macro_f1(predictions, references) == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    # a label of the task that never occurs counts as 0
    assert macro_f1(predictions, references, labels=["a", "b", "c", "d"]) == pytest.approx((2 / 3 + 2 / 3 + 1) / 4)
    assert accuracy(predictions, references) == 0.75
    with pytest.raises(ValueError, match="predictions"):
        macro_f1(["a"], ["a", "b"])


def test_rouge_on_known_pairs():
    assert rouge(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx({"rouge1": 1, "rouge2": 1, "rougeL": 1})
    assert rouge(["dogs bark"], ["cats meow"]) == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    # unigrams 2 of 3 on each side; bigrams 1 of 2; longest common subsequence 2
    scores = rouge(["the cat sat"], ["the cat ran"], use_stemmer=False)
    assert scores == pytest.approx({"rouge1": 2 / 3, "rouge2": 1 / 2, "rougeL": 2 / 3})


# ----------------------------------------------------------------------------------------------- scoring
@pytest.mark.parametrize("arch", ["llama", "gemma3"])
@torch.no_grad()
def test_continuation_logprobs_match_a_plain_forward_at_any_batch_size(make_tiny, arch):
    model = make_tiny(arch)
    g = torch.Generator().manual_seed(0)
    contexts = [torch.randint(5, 1000, (n,), generator=g).tolist() for n in (3, 20, 9, 9)]
    continuations = [[11, 12], [13], [14, 15, 16], [17]]
    contexts += [contexts[3], contexts[2]]  # contexts shared with other requests: one-token and multi-token answers
    continuations += [[18], [19, 20]]
    expected = []
    for context, continuation in zip(contexts, continuations):
        ids = torch.tensor([context + continuation])
        log_probs = torch.log_softmax(model(input_ids=ids).logits[0, :-1], -1)
        targets = ids[0, len(context) :]
        expected.append(float(log_probs[len(context) - 1 :].gather(1, targets.unsqueeze(1)).sum()))
    for batch_size in (1, 2, 8):
        got = continuation_logprobs(model, contexts, continuations, batch_size=batch_size, progress=False)
        assert [n for _, n in got] == [len(c) for c in continuations]
        assert [s for s, _ in got] == pytest.approx(expected, abs=1e-4)


@torch.no_grad()
def test_a_choice_is_scored_on_the_tokens_it_has_after_its_context(make_tiny):
    """A SentencePiece-style tokenizer encodes " yes" alone with an extra "▁": the choice is scored on the tokens
    it gets inside context + choice (as lm-evaluation-harness splits them), never on that extra token."""
    tok = metaspace_tokenizer()
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    whole = ids("Answer (yes or no): yes")
    context, choice = pair_ids(tok, "Answer (yes or no):", " yes")
    assert context + choice == whole and context == ids("Answer (yes or no):")
    assert len(ids(" yes")) == len(choice) + 1  # the extra "▁" the model would otherwise be scored on
    assert pair_ids(tok, "Answer (yes or no): ", "yes") == (context, choice)  # a trailing space moves to the choice
    model = make_tiny("llama")
    scores = choice_logprobs(model, tok, [ChoiceItem("Answer (yes or no):", (" yes", " no"), 0)], progress=False)
    log_probs = torch.log_softmax(model(input_ids=torch.tensor([whole])).logits[0, :-1], -1)
    expected = sum(float(log_probs[k - 1, whole[k]]) for k in range(len(context), len(whole)))
    assert scores.tokens[0][0] == len(choice) and scores.logprob[0][0] == pytest.approx(expected, abs=1e-4)


@torch.no_grad()
def test_greedy_generate_is_the_argmax_continuation_at_any_batch_size(tiny_llama):
    prompts = [[5, 6, 7, 8, 9], [20, 21], [30, 31, 32, 33]]
    expected = []
    for prompt in prompts:  # independent greedy loop, no cache
        ids = list(prompt)
        for _ in range(6):
            ids.append(int(tiny_llama(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
        expected.append(ids[len(prompt) :])
    for batch_size in (1, 3):
        assert greedy_generate(tiny_llama, prompts, 6, pad_id=0, eos_token_id=None, batch_size=batch_size, progress=False) == expected
    stop = expected[0][2]
    cut = greedy_generate(tiny_llama, prompts[:1], 6, pad_id=0, eos_token_id=stop, progress=False)[0]
    assert cut == expected[0][: expected[0].index(stop)]


# ----------------------------------------------------------------------------------------------- tasks
def test_task_items_are_a_seeded_subset_in_source_order():
    everything = load_task_records("pubmedqa")
    assert len(everything) == 500 and {r["final_decision"] for r in everything} == {"yes", "no", "maybe"}
    a = load_task_records("pubmedqa", limit=20, seed=1)
    assert a == load_task_records("pubmedqa", limit=20, seed=1)
    assert a != load_task_records("pubmedqa", limit=20, seed=2)
    positions = [everything.index(r) for r in a]
    assert positions == sorted(positions) and len(set(positions)) == 20
    assert len(load_task_records("casehold")) == 200 and len(load_task_records("billsum")) == 200


def test_task_data_errors_name_the_problem():
    with pytest.raises(DataError, match="missing: final_decision"):
        load_task_records("pubmedqa", [{"question": "q", "contexts": ["c"]}])
    with pytest.raises(DataError, match="records"):
        load_task_records("casehold", ["just text"])
    with pytest.raises(DataError, match="unknown"):
        load_task_records("mmlu")
    with pytest.raises(ValueError, match="limit"):
        load_task_records("billsum", limit=0)


def test_pubmedqa_on_a_model_that_ties_every_answer(make_tiny, tokenizer):
    """Every answer ties, so the first label (yes) is always chosen: the metrics follow from the references."""
    model = _uniform(make_tiny("llama"))
    result = pubmedqa(model, tokenizer, limit=30, seed=0, progress=False)
    references = [r["final_decision"] for r in load_task_records("pubmedqa", limit=30, seed=0)]
    yes = references.count("yes")
    assert result.predictions == ["yes"] * 30 and result.references == references
    assert result.metrics["accuracy"] == pytest.approx(yes / 30)
    assert result.metrics["macro_f1"] == pytest.approx((2 * yes / (2 * yes + 30 - yes)) / 3)
    # each metric's 95% interval over the 30 items: the one bootstrap_interval gives on the same per-item data
    correct = [p == r for p, r in zip(result.predictions, references)]
    assert result.intervals["accuracy"] == bootstrap_interval(mean_statistic(correct), 30, seed=0)
    assert result.metrics["macro_f1_low"] < result.metrics["macro_f1"] < result.metrics["macro_f1_high"]


def test_casehold_prefers_the_holding_the_model_predicts(make_tiny, tokenizer):
    """A model that puts its mass on one token: the holding made of that token wins on mean log-probability."""
    favourite = tokenizer(" holding", add_special_tokens=False)["input_ids"]
    assert len(favourite) == 1
    model = _BiasedHead(_uniform(make_tiny("llama")), favourite[0])
    record = {"citing_prompt": "The court ruled<HOLDING>, and so on.", "label": "2"}
    for k in range(5):
        record[f"holding_{k}"] = "holding holding holding" if k == 2 else f"that the statute of year {k} applies"
    result = casehold(model, tokenizer, data=[record, dict(record, label="0")], progress=False)
    assert result.predictions == [2, 2] and result.references == [2, 0]
    assert result.metrics["accuracy"] == 0.5
    assert result.metrics["macro_f1"] == pytest.approx((0 + 2 / 3) / 5)  # label 2: tp 1, fp 1; label 0: fn 1


class _BiasedHead(torch.nn.Module):
    """Wraps a causal LM and adds +20 to one token's logit everywhere (a model whose favourite is known)."""

    def __init__(self, model, token: int):
        super().__init__()
        self.model, self.token = model, token
        self.config, self.training = model.config, False

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def forward(self, **kwargs):
        out = self.model(**kwargs)
        out.logits[..., self.token] += 20.0
        return out


def test_billsum_generates_within_its_budget(tiny_llama, tokenizer):
    record = {"source": "To amend the Act. <SECTION-HEADER> SHORT TITLE. " + "word " * 2000, "summary": "Amends the Act."}
    result = billsum(tiny_llama, tokenizer, data=[record], max_length=128, max_new_tokens=8, chat_template=False, progress=False)
    assert result.num_items == 1 and set(result.intervals) == {"rouge1", "rouge2", "rougeL"}
    assert set(result.metrics) == {f"{m}{end}" for m in ("rouge1", "rouge2", "rougeL") for end in ("", "_low", "_high")}
    assert result.item_scores["rouge1"] == [result.metrics["rouge1"]] and result.per_item() == result.item_scores
    assert len(tokenizer(result.predictions[0], add_special_tokens=False)["input_ids"]) <= 8 + 2  # decode/re-encode slack
    with pytest.raises(DataError, match="max_length"):
        billsum(tiny_llama, tokenizer, data=[record], max_length=40, max_new_tokens=32, chat_template=False, progress=False)
    with pytest.raises(DataError, match="unknown"):
        evaluate_task(tiny_llama, tokenizer, "summarise")


@pytest.mark.slow
@pytest.mark.parametrize(
    "task,kwargs,metric",
    [("pubmedqa", {"limit": 6}, "macro_f1"), ("casehold", {"limit": 3}, "macro_f1"), ("billsum", {"limit": 2, "max_new_tokens": 48}, "rouge1")],
)
def test_each_task_runs_on_smollm2(smollm2, tokenizer, task, kwargs, metric):
    result = evaluate_task(smollm2, tokenizer, task, progress=False, **kwargs)
    assert result.num_items == kwargs["limit"] and 0.0 <= result.metrics[metric] <= 1.0
    if task == "pubmedqa":
        assert set(result.predictions) <= {"yes", "no", "maybe"}
        again = evaluate_task(smollm2, tokenizer, task, progress=False, batch_size=1, **kwargs)
        assert again.predictions == result.predictions  # batch size changes nothing
    elif task == "casehold":
        assert set(result.predictions) <= set(range(5))
    else:  # a real summary of a real bill shares words with the reference
        assert all(p.strip() for p in result.predictions) and result.metrics["rouge1"] > 0.1
