"""What `add_bos="auto"` changes, on SmolLM2-135M-Instruct and validation text only (never the test splits).

Validation sets, disjoint from the calibration bundle and from every test split (as `tune_dpruner.py`):
- general: the ABC news corpus (`general/lee_news.jsonl` of the project's data bundle; not Wikipedia);
- medical: PubMed *train*-split abstracts 1000-1299 (the bundled calibration file holds abstracts 0-999).

Three tokenizers on the same weights:
- `smollm2`: the model's own tokenizer, which adds no BOS (its declared bos_token is the chat token `<|im_start|>`);
- `smollm2+eot`: the same with `bos_token="<|endoftext|>", add_bos_token=True`, a tokenizer that adds a BOS.
  SmolLM2 was pre-trained with `<|endoftext|>` between documents, so this is the closest BOS convention the
  weights know; `add_bos="auto"` detects it and starts every window with it;
- `smollm2`, `add_bos=True`: forces the declared `<|im_start|>`, a token the model saw only in chat turns.

Measured: (1) whether `"auto"` changes SmolLM2's calibration and perplexity windows (sha256 of the windows, and
the perplexities, `"auto"` against `False`); (2) what a leading BOS does to the windows of a BOS-adding tokenizer;
(3) perplexity of `--windows` non-overlapping 512-token windows with and without each leading token (the
`perplexity` function, as users get it); (4) on the same text windows (511 tokens) with no prefix, `<|endoftext|>`
or `<|im_start|>` first: the NLL of the same predictions (text tokens 1-510), the NLL of text token 0 from the
prefix alone, and position 0's share of the activations calibration statistics see (per decoder layer, the
residual-stream norm at position 0 over the median norm at the other positions; the largest over layers).

    python benchmarks/bos_effect.py --data ../shared/data --out benchmarks/results/bos_effect.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time

import torch
from common import command_line, validation_texts, write_result


def _sha256(windows: list[torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for w in windows:
        digest.update(w.numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def _matched(model, windows: list[torch.Tensor], prefix: int | None) -> dict:
    """The same text windows with and without a leading token: NLL of the same predictions, and position 0's norm.

    `nll_same_predictions`: mean NLL of text tokens 1..n-1 of each window (each predicted from the same text
    before it; only the prefix differs). `nll_first_text_token`: mean NLL of text token 0 predicted from the prefix
    alone (scored only with a prefix). `first_position`: per decoder layer, the norm of the residual stream entering
    it at position 0 over the median norm at the other positions (mean over windows), its largest value and layer.
    """
    same, first, ratios = [], [], []
    for text in windows:
        ids = text if prefix is None else torch.cat([torch.tensor([prefix]), text])
        out = model(input_ids=ids.unsqueeze(0), output_hidden_states=True)
        nll = -torch.log_softmax(out.logits[0, :-1].float(), -1).gather(1, ids[1:].unsqueeze(1)).squeeze(1)
        offset = 0 if prefix is None else 1  # nll[offset + i - 1] scores text token i
        same.append(nll[offset:])
        if prefix is not None:
            first.append(nll[0])
        norms = torch.stack([h[0].float().norm(dim=-1) for h in out.hidden_states[:-1]])  # (layers, positions)
        ratios.append(norms[:, 0] / norms[:, 1:].median(dim=1).values)
    mean_ratio = torch.stack(ratios).mean(0)
    layer = int(mean_ratio.argmax())
    return {
        "nll_same_predictions": round(float(torch.cat(same).mean()), 5),
        "tokens_same_predictions": int(sum(len(x) for x in same)),
        "nll_first_text_token": round(float(torch.stack(first).mean()), 4) if first else None,
        "first_position_max_ratio": round(float(mean_ratio[layer]), 1),
        "first_position_layer": layer,
        "first_position_ratio_per_layer": [round(float(r), 1) for r in mean_ratio],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join("..", "shared", "data"), help="the project's data bundle")
    parser.add_argument("--windows", type=int, default=8, help="perplexity windows of 512 tokens per corpus")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", default="benchmarks/results/bos_effect.json", help="JSON result (markdown beside it)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from optimum_dpruner.models.default_model import ensure_default_model
    from optimum_dpruner.data.calibration import calibration_samples, tokenizer_adds_bos, window_bos_id
    from optimum_dpruner.evaluation import perplexity, tokenize_corpus

    texts = validation_texts(args.data)
    corpora = {"general (lee_news)": texts["general"], "medical (PubMed train 1000-1299)": texts["medical"]}
    path = ensure_default_model()
    own = AutoTokenizer.from_pretrained(path)
    eot = AutoTokenizer.from_pretrained(path, bos_token="<|endoftext|>", add_bos_token=True)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    tokenizers = {
        name: {"bos_token": tok.bos_token, "bos_token_id": tok.bos_token_id, "add_bos_token_attribute": tok.add_bos_token,
               "adds_bos": tokenizer_adds_bos(tok), "auto_window_bos_id": window_bos_id(tok, "auto")}
        for name, tok in (("smollm2", own), ("smollm2+eot", eot))
    }
    # (label, tokenizer, add_bos): the calibration windows and the rows of the perplexity table
    settings = [
        ("smollm2, auto (no BOS)", own, "auto"),
        ("smollm2, False", own, False),
        ("smollm2+eot, auto (<|endoftext|> first)", eot, "auto"),
        ("smollm2, True (<|im_start|> first)", own, True),
    ]
    prefixes = {"none": None, "<|endoftext|>": eot.bos_token_id, "<|im_start|>": own.bos_token_id}
    rows, matched, windows, started = [], [], {}, time.perf_counter()
    for corpus, texts in corpora.items():
        calib = {label: calibration_samples(texts, tok, 32, 512, seed=0, add_bos=add_bos) for label, tok, add_bos in settings}
        text_only = calibration_samples(texts, eot, 32, 511, seed=0, add_bos=False)
        eot_auto = calib["smollm2+eot, auto (<|endoftext|> first)"]
        windows[corpus] = {
            "smollm2_auto_sha256": _sha256(calib["smollm2, auto (no BOS)"]),
            "smollm2_false_sha256": _sha256(calib["smollm2, False"]),
            "smollm2_auto_identical_to_false": _sha256(calib["smollm2, auto (no BOS)"]) == _sha256(calib["smollm2, False"]),
            "eot_auto_windows": len(eot_auto),
            "eot_auto_all_start_with_bos": all(int(w[0, 0]) == eot.bos_token_id for w in eot_auto),
            "eot_auto_rest_is_the_text_stream": all(torch.equal(w[:, 1:], t) for w, t in zip(eot_auto, text_only)),
        }
        for label, tok, add_bos in settings:
            ppl = perplexity(model, tok, texts, window=512, limit=args.windows, progress=False, add_bos=add_bos)
            rows.append({"corpus": corpus, "setting": label, "add_bos": add_bos, "perplexity": round(ppl, 4)})
            print(json.dumps(rows[-1]), flush=True)
        # the text of the perplexity windows with a BOS (511 tokens each), with each prefix in turn
        text = tokenize_corpus(texts, own, max_tokens=args.windows * 511)
        text_windows = list(text.view(args.windows, 511))
        for name, prefix in prefixes.items():
            matched.append({"corpus": corpus, "prefix": name, **_matched(model, text_windows, prefix)})
            print(json.dumps({k: v for k, v in matched[-1].items() if k != "first_position_ratio_per_layer"}), flush=True)
    record = {
        "command": command_line(__file__, argv or sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "model": "SmolLM2-135M-Instruct (embedded, fp32)",
        "threads": args.threads,
        "perplexity_windows": f"{args.windows} x 512 tokens, non-overlapping (with a BOS: BOS + 511 text tokens)",
        "seconds": round(time.perf_counter() - started, 1),
        "tokenizers": tokenizers,
        "windows": windows,
        "rows": rows,
        "matched": matched,
    }
    write_result(args.out, record, _markdown)


def _markdown(record: dict) -> str:
    lines = [
        f"Command: `{record['command']}`",
        "",
        f"Date: {record['date']}, model {record['model']}, {record['threads']} CPU thread(s), {record['seconds']} s. "
        f"Perplexity on {record['perplexity_windows']}; validation text only.",
        "",
        "| tokenizer | bos_token | add_bos_token attribute | adds a BOS to an encoded text | BOS used by add_bos='auto' |",
        "|---|---|---|---|---|",
    ]
    for name, t in record["tokenizers"].items():
        lines.append(f"| {name} | {t['bos_token'].replace('|', chr(92) + '|')} ({t['bos_token_id']}) | {t['add_bos_token_attribute']} | {t['adds_bos']} "
                     f"| {t['auto_window_bos_id']} |")
    lines += ["", "| corpus | SmolLM2 calibration windows: auto == False (sha256) | <\\|endoftext\\|> tokenizer, auto: windows "
              "| all start with BOS | rest = the text stream |", "|---|---|---|---|---|"]
    for corpus, w in record["windows"].items():
        lines.append(f"| {corpus} | {w['smollm2_auto_identical_to_false']} (`{w['smollm2_auto_sha256'][:12]}`) "
                     f"| {w['eot_auto_windows']} x 512 | {w['eot_auto_all_start_with_bos']} | {w['eot_auto_rest_is_the_text_stream']} |")
    lines += ["", "Perplexity as `perplexity(..., add_bos=...)` reports it (with a BOS each window scores its first text "
              "token from the BOS alone; without, that token is context and not scored):", "",
              "| corpus | setting | perplexity |", "|---|---|---|"]
    for r in record["rows"]:
        lines.append(f"| {r['corpus']} | {r['setting'].replace('|', chr(92) + '|')} | {r['perplexity']:.3f} |")
    lines += ["", "The same text windows (511 tokens) with each leading token: NLL of the same predictions (text tokens "
              "1-510, same text context), NLL of text token 0 from the prefix alone, and position 0's residual-stream norm "
              "over the median norm of the other positions (largest over layers):", "",
              "| corpus | prefix | mean NLL, same predictions (tokens) | exp of it | NLL of text token 0 | position-0 norm ratio (layer) |",
              "|---|---|---|---|---|---|"]
    for m in record["matched"]:
        first = "-" if m["nll_first_text_token"] is None else f"{m['nll_first_text_token']:.2f}"
        lines.append(f"| {m['corpus']} | {m['prefix'].replace('|', chr(92) + '|')} | {m['nll_same_predictions']:.4f} "
                     f"({m['tokens_same_predictions']}) | {math.exp(m['nll_same_predictions']):.3f} | {first} "
                     f"| {m['first_position_max_ratio']} ({m['first_position_layer']}) |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
