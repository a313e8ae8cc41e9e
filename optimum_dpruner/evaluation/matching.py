"""Matching tasks: 4-way multiple choice built from test documents, scored by log-likelihood (lm-evaluation-harness style).

- `pubmed_title` (medical): after ``"Abstract: <abstract>\\nTitle:"``, which of 4 titles is the abstract's own
  (the 3 others: the titles of the 3 test abstracts most similar to it, TF-IDF cosine), by the summed
  log-probability of each title;
- `billsum_title` (legal): the same after ``"Summary: <CRS summary>\\nTitle:"`` with 4 bill titles (a bill's text
  before its first section; the summary without its leading "<short title> - ", which would match by copying);
- `wiki_next` (general): after up to 64 words of a Wikipedia paragraph, which of 4 sentences comes next (the 3
  others: sentences of 6-40 words drawn from the other test articles), by PMI: each sentence's log-probability
  after the paragraph minus the one after a bare line break;
- `billsum_next` (legal): the same on the text of the BillSum test bills (their sections as paragraphs, one item
  per bill, legal citation abbreviations kept inside sentences).

`billsum_title` separates a damaged model less clearly than the others (dense and magnitude 50% have overlapping
intervals on its test items, `benchmarks/README.md`), so `benchmarks/compare.py` uses `billsum_next` for the legal
domain.

The design (prompts, which side is the continuation, distractors, normalisation) was chosen on items built from
*train* texts only, by `benchmarks/matching_design.py` (results and rule in `benchmarks/README.md`): among the
variants whose dense interval excludes chance, the one that tells magnitude pruning at 30% from dense best.
BillSum has no train split here: `billsum_title` takes the design chosen on PubMed, the same "text -> its title" form;
`billsum_next` the next-sentence design, checked on CaseHOLD train opinions.
Items are built once from all documents with a fixed seed (`ITEM_SEED`), so an item's choices never depend on
`limit` or `seed`, which only pick the evaluated subset. Metric: `accuracy` with its bootstrap interval; chance
is 1/4.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataError
from .checks import fit_to_model
from .choice import ChoiceItem, choice_logprobs, choose
from .records import TaskResult, load_task_records, seeded_subset, task_result

__all__ = [
    "ITEM_SEED",
    "NUM_CHOICES",
    "matching_items",
    "split_sentences",
    "next_sentence_items",
    "pubmed_title_items",
    "billsum_title_items",
    "wiki_next_items",
    "billsum_next_items",
    "GENERAL_ABBREVIATIONS",
    "LEGAL_ABBREVIATIONS",
    "ITEM_BUILDERS",
    "pubmed_title",
    "billsum_title",
    "wiki_next",
    "billsum_next",
]

ITEM_SEED = 0
NUM_CHOICES = 4
_WORD = re.compile(r"[a-z][a-z0-9'-]+")


def _words(text: str, limit: int | None) -> str:
    """The first `limit` whitespace-separated words of `text` (all of them when `limit` is None)."""
    words = text.split()
    return " ".join(words if limit is None else words[:limit])


def _most_similar(texts: Sequence[str]) -> np.ndarray:
    """Row i: the other texts ordered from most to least similar to text i (TF-IDF cosine over lower-cased words)."""
    counts = [Counter(_WORD.findall(t.lower())) for t in texts]
    vocabulary = {w: k for k, w in enumerate(sorted(set().union(*counts)))}
    frequency = Counter(w for c in counts for w in c)
    vectors = np.zeros((len(texts), len(vocabulary)))
    for i, c in enumerate(counts):
        for w, n in c.items():
            vectors[i, vocabulary[w]] = (1 + math.log(n)) * math.log(len(texts) / frequency[w])
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1, kind="stable")


def matching_items(
    contexts: Sequence[str],
    answers: Sequence[str],
    similarity_texts: Sequence[str] | None = None,
    num_choices: int = NUM_CHOICES,
    seed: int = ITEM_SEED,
) -> list[ChoiceItem]:
    """Item i: `contexts[i]` with `answers[i]` among `num_choices - 1` other answers, in a seeded random order.

    The other answers are those of the documents whose `similarity_texts` are most similar to document i's
    (hard distractors), or drawn at random when `similarity_texts` is None. An answer equal to the right one
    (ignoring case) is never a distractor.
    """
    if len(contexts) != len(answers) or len(answers) < num_choices:
        raise DataError(f"matching needs at least {num_choices} documents and one answer per context; got "
                        f"{len(contexts)} contexts and {len(answers)} answers; pass more documents.")
    rng = random.Random(seed)
    order = _most_similar(similarity_texts) if similarity_texts is not None else None
    items = []
    for i, (context, answer) in enumerate(zip(contexts, answers)):
        candidates = order[i].tolist() if order is not None else rng.sample(range(len(answers)), len(answers))
        chosen: list[str] = []
        for j in candidates:
            if j != i and answers[j].strip().lower() not in {a.strip().lower() for a in [answer, *chosen]}:
                chosen.append(answers[j])
            if len(chosen) == num_choices - 1:
                break
        choices = [answer, *chosen]
        rng.shuffle(choices)
        items.append(ChoiceItem(context, tuple(choices), choices.index(answer)))
    return items


#: a sentence ending like this did not end (`U.S.`, `Dr.`, `e.g.`); the legal set adds citation abbreviations
GENERAL_ABBREVIATIONS = re.compile(r"(?:\b[A-Z]|\b(?:Mr|Mrs|Ms|Dr|St|Mt|No|vs|Jr|Sr|Inc|Co|Ltd|Gen|Col|Lt|ca|c|e\.g|i\.e)|\.[A-Z])\.$")
LEGAL_ABBREVIATIONS = re.compile(
    r"(?:\b[A-Z]|\b(?:Mr|Mrs|Ms|Dr|St|Mt|No|Nos|vs|v|Jr|Sr|Inc|Co|Corp|Ltd|Gen|Col|Lt|ca|c|e\.g|i\.e|al|Cir|Supp|Stat|Sec|App|"
    r"Ct|Dist|Fed|Rev|Ann|Pub|Civ|Crim|Proc|Cong|Cl|Subch|Pt)|\.[A-Z])\.$"
)


def split_sentences(paragraph: str, abbreviations: re.Pattern = GENERAL_ABBREVIATIONS) -> list[str]:
    """Sentences of a paragraph: split after `.`, `!` or `?` before a capital, digit or quote, not after an abbreviation."""
    pieces = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", paragraph.strip())
    sentences: list[str] = []
    for piece in pieces:
        if sentences and abbreviations.search(sentences[-1]):
            sentences[-1] += " " + piece
        else:
            sentences.append(piece)
    return [s for s in sentences if s]


def next_sentence_items(
    articles: Sequence[str],
    per_article: int = 16,
    context_words: int = 64,
    same_article: bool = True,
    min_words: int = 6,
    max_words: int = 40,
    num_choices: int = NUM_CHOICES,
    seed: int = ITEM_SEED,
    abbreviations: re.Pattern = GENERAL_ABBREVIATIONS,
) -> list[ChoiceItem]:
    """Next-sentence items from articles (one paragraph per line): up to `per_article` per article.

    A candidate is a sentence of `min_words`-`max_words` words that is not the first of its paragraph; its
    context is the preceding sentences of that paragraph, cut to their last `context_words` words (whole
    sentences are kept where they fit). Distractors are sentences of the same length range from other
    paragraphs of the same article (`same_article`) or of other articles; no choice repeats another (a
    candidate without enough distinct distractors is skipped).
    """
    pick_items, pick_choices = random.Random(seed), random.Random(seed + 1)  # the same items whatever the distractors
    paragraphs = [[split_sentences(line, abbreviations) for line in article.split("\n") if line.strip()] for article in articles]
    fits = [[[s for s in p if min_words <= len(s.split()) <= max_words] for p in article] for article in paragraphs]
    items = []
    for a, article in enumerate(paragraphs):
        candidates = [(p, k) for p, sentences in enumerate(article) for k in range(1, len(sentences))
                      if min_words <= len(sentences[k].split()) <= max_words]
        for p, k in sorted(pick_items.sample(candidates, min(per_article, len(candidates)))):
            if same_article:
                pool = [s for q, sentences in enumerate(fits[a]) if q != p for s in sentences]
            else:
                pool = [s for b, other in enumerate(fits) if b != a for sentences in other for s in sentences]
            sentence = article[p][k]
            if len(set(pool) - {sentence}) < num_choices - 1:
                continue
            drawn = pick_choices.sample(pool, num_choices - 1)
            while len({sentence, *drawn}) < num_choices:  # a distractor repeats a choice (boilerplate): draw again
                drawn = pick_choices.sample(pool, num_choices - 1)
            true = " " + sentence
            choices = [true, *(" " + s for s in drawn)]
            pick_choices.shuffle(choices)
            items.append(ChoiceItem(_last_words(article[p][:k], context_words), tuple(choices), choices.index(true)))
    return items


def _last_words(sentences: Sequence[str], limit: int) -> str:
    """The last whole sentences that fit in `limit` words; the last sentence's tail when none fits."""
    kept: list[str] = []
    for sentence in reversed(sentences):
        if sum(len(s.split()) for s in kept) + len(sentence.split()) > limit:
            break
        kept.insert(0, sentence)
    return " ".join(kept) if kept else " ".join(sentences[-1].split()[-limit:])


def _strip_short_title(summary: str, source: str) -> str:
    """A CRS summary without its leading "<short title> - " (the bill's name, which would match by copying)."""
    head, dash, rest = summary.partition(" - ")
    if dash and len(head.split()) <= 30 and (head.lower() in source.lower() or re.search(r"\b(Act|Resolution|Law)\b", head)):
        return rest
    return summary


# The chosen designs (benchmarks/matching_design.py on train items; benchmarks/README.md)
_TITLE_WORDS = 60  # a title longer than this is cut (a few bill titles run to hundreds of words)
#: per task: (normalisation, neutral context of the "pmi" scores or None)
_SCORING = {"pubmed_title": ("sum", None), "billsum_title": ("sum", None), "wiki_next": ("pmi", "\n"),
            "billsum_next": ("pmi", "\n")}


def pubmed_title_items(records: Sequence[dict], context_words: int | None = None) -> list[ChoiceItem]:
    """`pubmed_title` items from records with `title` and `abstract` (abstract lines joined by spaces)."""
    abstracts = [" ".join(r["abstract"].split()) for r in records]
    contexts = [f"Abstract: {_words(a, context_words)}\nTitle:" for a in abstracts]
    return matching_items(contexts, [" " + _words(r["title"], _TITLE_WORDS) for r in records], abstracts)


def billsum_title_items(records: Sequence[dict]) -> list[ChoiceItem]:
    """`billsum_title` items from BillSum records (`source`, `summary`): the title is the source before its first section."""
    summaries = [_strip_short_title(" ".join(r["summary"].split()), r["source"]) for r in records]
    titles = [" " + _words(r["source"].split("<SECTION-HEADER>")[0], _TITLE_WORDS) for r in records]
    return matching_items([f"Summary: {s}\nTitle:" for s in summaries], titles, summaries)


def wiki_next_items(records: Sequence[dict]) -> list[ChoiceItem]:
    """`wiki_next` items from articles with `title` and `text` (one paragraph per line)."""
    return next_sentence_items([r["text"] for r in records], context_words=64, same_article=False)


def billsum_next_items(records: Sequence[dict]) -> list[ChoiceItem]:
    """`billsum_next` items from BillSum records (`source`): one per bill, its sections as paragraphs."""
    bills = ["\n".join(section.strip() for section in r["source"].split("<SECTION-HEADER>")) for r in records]
    return next_sentence_items(bills, per_article=1, context_words=64, same_article=False, abbreviations=LEGAL_ABBREVIATIONS)


ITEM_BUILDERS = {"pubmed_title": pubmed_title_items, "billsum_title": billsum_title_items, "wiki_next": wiki_next_items,
                 "billsum_next": billsum_next_items}


def _matching_task(task: str, description: str):
    """The task function of `task`: items from `ITEM_BUILDERS`, scored as `_SCORING` says."""

    def run(model, tokenizer, data: Any = None, limit: int | None = None, batch_size: int = 8, seed: int = 0,
            max_length: int | None = None, progress: bool = True) -> TaskResult:
        items = seeded_subset(ITEM_BUILDERS[task](load_task_records(task, data)), limit, seed)
        normalisation, neutral = _SCORING[task]
        scores = choice_logprobs(model, tokenizer, items, neutral, batch_size,
                                 fit_to_model(model, "max_length", max_length, 2048), progress, desc=task)
        return task_result(task, choose(scores, normalisation), [item.label for item in items], seed=seed)

    run.__name__ = run.__qualname__ = task
    run.__doc__ = f"""{description}; see the module docstring. Metric: `accuracy` with its 95% bootstrap interval.

    Args:
        model: a causal LM.
        tokenizer: its tokenizer.
        data (*optional*): documents with the fields of `TASK_FIELDS["{task}"]` (default: the bundled test split).
        limit (`int`, *optional*): evaluate a seeded random subset of this many items (the items never change).
        batch_size (`int`, *optional*, defaults to 8): choices of one context per forward pass.
        seed (`int`, *optional*, defaults to 0): seed of the subset and of the bootstrap.
        max_length (`int`, *optional*): longest input; defaults to 2048 or the model's positions if fewer.
        progress (`bool`, *optional*, defaults to `True`): show a progress bar.
    """
    return run


pubmed_title = _matching_task("pubmed_title", "Medical title matching (bundled: the 300 PubMed test abstracts)")
billsum_title = _matching_task("billsum_title", "Legal title matching (bundled: the 200 BillSum test bills; weaker than billsum_next)")
wiki_next = _matching_task("wiki_next", "General next-sentence choice (bundled: 283 sentences of the 19 Wikipedia test articles)")
billsum_next = _matching_task("billsum_next", "Legal next-sentence choice (bundled: one sentence of each of the 200 BillSum test bills)")
