"""Matching tasks: item building, and a handful of items that a constructed model answers right by design."""

from __future__ import annotations

import pytest
import torch

from optimum_dpruner.evaluation import TASKS, evaluate_task, load_task_records
from optimum_dpruner.evaluation.choice import ChoiceItem, choice_logprobs, choose
from optimum_dpruner.evaluation.matching import (
    ITEM_BUILDERS,
    LEGAL_ABBREVIATIONS,
    billsum_next_items,
    billsum_title_items,
    matching_items,
    next_sentence_items,
    pubmed_title_items,
    split_sentences,
    wiki_next_items,
)



class _CopyingModel(torch.nn.Module):
    """A causal LM that predicts the tokens it has already seen: +10 on the logit of every earlier token.

    It wraps a tiny LLaMA whose output layer is zeroed (all logits 0), so its only preference is copying from the
    context: a choice sharing words with its context gains log-probability there and not after a neutral context,
    which is what the matching tasks (PMI normalisation) reward. The context's tokens ride on the KV cache object
    (`continuation_logprobs` runs the context once and its choices on copies of that cache).
    """

    def __init__(self, model):
        super().__init__()
        with torch.no_grad():
            model.get_output_embeddings().weight.zero_()
        self.model, self.config, self.training = model, model.config, False

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def forward(self, input_ids, past_key_values=None, logits_to_keep=0, **kwargs):
        out = self.model(input_ids=input_ids, past_key_values=past_key_values, logits_to_keep=logits_to_keep, **kwargs)
        seen = getattr(past_key_values, "seen_ids", [])
        kept = out.logits.shape[1]
        for row in range(input_ids.shape[0]):
            for t in range(kept):
                position = input_ids.shape[1] - kept + t
                out.logits[row, t, seen + input_ids[row, : position + 1].tolist()] += 10.0
        if out.past_key_values is not None and past_key_values is None:
            out.past_key_values.seen_ids = input_ids[0].tolist()
        return out


DOCUMENTS = [
    {"title": "Zebra migration across the Serengeti plains", "abstract": "We tracked zebra herds. Zebra migration follows rain across the Serengeti plains each year."},
    {"title": "Insulin dosing in pregnant diabetic women", "abstract": "Pregnant women with diabetes need insulin. We compared insulin dosing schedules in diabetic pregnancy."},
    {"title": "Volcanic ash and jet engine failure", "abstract": "Jet engines ingest volcanic ash. Ash melts in the engine and causes failure of turbine blades."},
    {"title": "Honeybee colony collapse and pesticides", "abstract": "Honeybee colonies collapse when exposed to pesticides. We measured colony losses after pesticide use."},
    {"title": "Quantum dots for tumour imaging", "abstract": "Quantum dots glow brightly. We used quantum dots to image tumours in mice with high contrast."},
]


def test_a_copying_model_matches_every_title_and_a_uniform_one_picks_the_shortest(make_tiny, tokenizer):
    result = evaluate_task(_CopyingModel(make_tiny("llama")), tokenizer, "pubmed_title", data=DOCUMENTS, progress=False)
    assert result.num_items == 5 and result.metrics["accuracy"] == 1.0
    assert result.predictions == result.references
    assert result.metrics["accuracy_low"] == result.metrics["accuracy_high"] == 1.0  # every resample is all right
    # a model with no preference gives every token log(1 / vocabulary): the summed score picks the shortest title
    uniform = make_tiny("llama")
    with torch.no_grad():
        uniform.get_output_embeddings().weight.zero_()
    tie = evaluate_task(uniform, tokenizer, "pubmed_title", data=DOCUMENTS, progress=False)
    items = pubmed_title_items(DOCUMENTS)
    lengths = [[len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in item.choices] for item in items]
    assert tie.predictions == [n.index(min(n)) for n in lengths]


def test_pmi_removes_a_choice_s_own_likelihood(make_tiny, tokenizer):
    """Sum of log-probabilities prefers the choice the copying model has seen *anywhere*; PMI only what the context adds."""
    model = _CopyingModel(make_tiny("llama"))
    item = ChoiceItem("Title: the the the. Abstract about zebras:", (" the", " zebras zebras"), 1)
    scores = choice_logprobs(model, tokenizer, [item], "Title: the the the.", progress=False)
    assert choose(scores, "pmi") == [1]
    assert choose(scores, "sum") == [0]  # one copied token beats two, one of them copied; PMI: " the" gains nothing


def test_items_are_built_once_and_limit_only_subsets_them():
    for task, build in ITEM_BUILDERS.items():
        items = build(load_task_records(task))
        assert items == build(load_task_records(task))  # deterministic
        assert all(len(item.choices) == 4 and len(set(c.strip().lower() for c in item.choices)) == 4 for item in items)
        labels = [item.label for item in items]
        assert all(labels.count(k) > len(items) / 8 for k in range(4)), task  # the right answer moves around
    assert len(pubmed_title_items(load_task_records("pubmed_title"))) == 300
    assert len(billsum_title_items(load_task_records("billsum_title"))) == 200
    assert len(wiki_next_items(load_task_records("wiki_next"))) == 283
    assert len(billsum_next_items(load_task_records("billsum_next"))) == 200
    assert set(TASKS) >= set(ITEM_BUILDERS)


def test_title_items_take_the_most_similar_documents_as_distractors():
    texts = ["cats purr and cats meow", "dogs bark", "cats meow loudly", "fish swim", "birds sing", "cats purr"]
    items = matching_items([f"Text: {t}\nTitle:" for t in texts], [f" T{i}" for i in range(6)], texts)
    assert {" T2", " T5"} <= set(items[0].choices)  # the two other texts about cats
    assert items[0].choices[items[0].label] == " T0"


def test_next_sentence_items_never_offer_the_context_s_own_paragraph_as_a_distractor():
    articles = ["\n".join(f"Paragraph {p} starts here with words. Its second sentence is number {p} too. A third one for {p} ends it."
                          for p in range(6))]
    items = next_sentence_items(articles, per_article=4, context_words=20)
    assert items
    for item in items:
        paragraph = item.context.split()[1]  # "Paragraph <p> starts ..."
        right = item.choices[item.label]
        assert paragraph in right or paragraph.rstrip(".") in right
        assert all(paragraph not in c.split() for k, c in enumerate(item.choices) if k != item.label)


def test_next_sentence_items_never_repeat_a_choice():
    """Boilerplate repeats across paragraphs (as in bills): the right sentence and the distractors stay distinct."""
    same = "The Secretary shall carry out this section with the funds."
    articles = ["\n".join(f"Paragraph {p} opens the text here. {same} Sentence {p} of its own is this one."
                          for p in range(8))]
    items = next_sentence_items(articles, per_article=16, context_words=20)
    assert any(c.strip() == same for item in items for c in item.choices)
    for item in items:
        assert len({c.strip() for c in item.choices}) == len(item.choices)
    # too few distinct sentences besides the right one: no item rather than a repeated choice
    assert next_sentence_items(["\n".join(f"Start {p} of it here. {same}" for p in range(8))], context_words=20) == []


def test_split_sentences_keeps_abbreviations_together():
    text = "The U.S. Army moved to St. Louis in 1850. It stayed there. Dr. Smith said so! Then (in 1900) it left."
    assert split_sentences(text) == ["The U.S. Army moved to St. Louis in 1850.", "It stayed there.", "Dr. Smith said so!",
                                     "Then (in 1900) it left."]
    citation = "See Marion Trust Co. v. City of Indianapolis, 37 F. Supp. 2d 1 (7th Cir. 1999). It held so."
    assert split_sentences(citation, LEGAL_ABBREVIATIONS) == [citation[:-12], "It held so."]
    assert len(split_sentences(citation)) > 2  # the general set splits after "v." and "Supp."


@pytest.mark.slow
@pytest.mark.parametrize("task", ["pubmed_title", "wiki_next", "billsum_next"])
def test_smollm2_matches_better_than_chance_on_a_few_items(smollm2, tokenizer, task):
    """The tasks that earn their place (dense 0.73-0.96 on all items, benchmarks/README.md); chance is 0.25."""
    result = evaluate_task(smollm2, tokenizer, task, limit=12, progress=False)
    assert result.num_items == 12 and result.metrics["accuracy"] >= 0.5
