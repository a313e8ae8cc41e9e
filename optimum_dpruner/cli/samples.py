"""`evaluate --prompt`: greedy continuations by the model and a `--reference` model, as the command prints and
writes them (`{"prompt", "max_new_tokens", "continuation", "reference_continuation"}` per prompt)."""

from __future__ import annotations

import argparse

from .output import status

__all__ = ["DEFAULT_MAX_NEW_TOKENS", "continue_prompts", "format_samples"]

#: `optimum_dpruner.evaluation.generation.DEFAULT_MAX_NEW_TOKENS` (here so that `--help` imports no torch; a test
#: keeps them equal)
DEFAULT_MAX_NEW_TOKENS = 32


def continue_prompts(name: str, model, tokenizer, args: argparse.Namespace, samples: list[dict] | None = None) -> list[dict]:
    """The greedy continuation of every `--prompt` by `model`: new samples, or with `samples` (the model's), each
    given the continuation of the reference model `name` as `reference_continuation`."""
    from ..evaluation import generate_samples

    status(f"greedy continuations by {name}")
    new_tokens = args.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
    continuations = generate_samples(model, tokenizer, args.prompt, max_new_tokens=new_tokens, add_bos=args.add_bos,
                                     progress=not args.no_progress)
    if samples is None:
        return [{"prompt": p, "max_new_tokens": new_tokens, "continuation": c} for p, c in zip(args.prompt, continuations)]
    for sample, continuation in zip(samples, continuations):
        sample["reference_continuation"] = continuation
    return samples


def format_samples(samples: list[dict], model: str, reference: str | None) -> str:
    """Each prompt, then each model's continuation, labelled; a text's further lines are indented."""
    def labelled(label: str, text: str) -> str:
        return f"{label}: " + text.replace("\n", "\n    ")

    blocks = []
    for sample in samples:
        lines = [labelled("prompt", sample["prompt"]), labelled(f"model ({model})", sample["continuation"])]
        if reference is not None:
            lines.append(labelled(f"reference ({reference})", sample["reference_continuation"]))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
