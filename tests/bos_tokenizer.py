"""Tiny tokenizers built offline that behave like the families SmolLM2's does not stand for.

`bos_tokenizer`: byte-level BPE whose post-processor puts `<s>` before every encoded text. It stands for the
LLaMA/Mistral/Gemma tokenizers (which add a BOS) in mechanics tests; the real SmolLM2 tokenizer (which adds none) is
the `tokenizer` fixture. Built with `tokenizers` and wrapped in `PreTrainedTokenizerFast`, it reports
`add_bos_token=False` although it adds one, as tokenizers loaded from a `tokenizer.json` do.

`metaspace_tokenizer`: SentencePiece-style BPE (spaces become `"▁"`, one is put before the text), as LLaMA-2 and
Mistral encode: `" yes"` alone starts with an extra `"▁"` that it does not get after a context.
"""

from __future__ import annotations

_CORPUS = [
    "The patient was treated with aspirin and the symptoms improved within two days.",
    "Wikipedia is a free online encyclopedia written and maintained by a community of volunteers.",
    "The court held that the contract was void because one party lacked capacity.",
]


def bos_tokenizer(adds_bos: bool = True, bos_token: str | None = "<s>"):
    """A `PreTrainedTokenizerFast` (vocabulary of 300, ids 0 and 1 are `<s>` and `</s>`) that encodes any text.

    Args:
        adds_bos: whether `tokenizer(text)` starts with `<s>`.
        bos_token: the tokenizer's declared BOS token (`None`: it has none).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    backend.train_from_iterator(_CORPUS, trainer)
    if adds_bos:
        backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos_token, eos_token="</s>")


def metaspace_tokenizer():
    """A `PreTrainedTokenizerFast` (vocabulary of 300) normalising as LLaMA-2's fast tokenizer does: a `"▁"` is put
    before the text and every space becomes one."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never")
    backend.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"], show_progress=False)
    backend.train_from_iterator([*_CORPUS, "Answer (yes or no): yes. Answer: no."], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
