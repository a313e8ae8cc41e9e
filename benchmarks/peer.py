"""The maintained peer: llm-compressor's SparseGPT and Wanda (`oneshot`) on the same model and calibration windows.

Runs inside llm-compressor's own virtual environment (it pins transformers <= 5.17, so it cannot share ours):

    make peer-venv    # .peer-venv: torch==2.13.0 (CPU), llmcompressor==0.14.0.1
    .peer-venv/bin/python benchmarks/peer.py --model DIR --calibration windows.safetensors --method sparsegpt \
        --pattern 2:4 --out pruned.safetensors

`benchmarks/compare.py` and `benchmarks/rounding_spread.py` drive it through `prune_in_peer_venv`: it writes
the exact token windows our own methods calibrate on (`--calibration`, a safetensors file with `input_ids` of
shape (N, L)), runs this script, and loads the pruned target weights it writes (`--out`) into the model in our
environment, which the drivers then evaluate with the same protocol as every other row. This script prints one
JSON line: the pruning wall time (`oneshot` alone; tokenising is done already), the process's peak RSS and the
llm-compressor version.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time


def prune_in_peer_venv(model, windows, method: str, pattern: str, peer_python: str, threads: int) -> dict:
    """Called from our environment: run this script in `peer_python` on the token `windows` (a list of (1, L)
    tensors), copy the pruned weights it writes into `model` (in place) and return its JSON line."""
    import torch
    from safetensors.torch import load_file, save_file

    from optimum_dpruner.models.default_model import ensure_default_model

    with tempfile.TemporaryDirectory() as tmp:
        calibration, out = os.path.join(tmp, "calibration.safetensors"), os.path.join(tmp, "pruned.safetensors")
        save_file({"input_ids": torch.cat(windows)}, calibration)
        command = [peer_python, os.path.abspath(__file__), "--model", ensure_default_model(), "--calibration", calibration,
                   "--method", method, "--pattern", pattern, "--threads", str(threads), "--out", out]
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"llm-compressor run failed:\n{proc.stderr[-4000:]}")
        weights = load_file(out)
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in weights.items():
            parameters[name].copy_(tensor)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder (safetensors)")
    parser.add_argument("--calibration", required=True, help="safetensors file with input_ids (N, L)")
    parser.add_argument("--method", required=True, choices=["sparsegpt", "wanda"])
    parser.add_argument("--pattern", default="unstructured", help="unstructured or N:M")
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True, help="safetensors file for the pruned decoder-block Linear weights")
    args = parser.parse_args()

    import torch
    from datasets import Dataset
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    import llmcompressor
    from llmcompressor import oneshot
    from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier

    torch.set_num_threads(args.threads)
    ids = load_file(args.calibration)["input_ids"]
    dataset = Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": torch.ones_like(ids).tolist()})
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    structure = "0:0" if args.pattern == "unstructured" else args.pattern
    common = dict(sparsity=args.sparsity, mask_structure=structure, targets=["Linear"], ignore=["re:.*lm_head"])
    if args.method == "sparsegpt":  # the same block size and damping as ours
        recipe = SparseGPTModifier(block_size=128, dampening_frac=0.01, **common)
    else:
        recipe = WandaPruningModifier(**common)
    start = time.time()
    oneshot(model=model, dataset=dataset, recipe=recipe, num_calibration_samples=len(ids), max_seq_length=ids.shape[1],
            shuffle_calibration_samples=False)
    seconds = time.time() - start
    weights = {
        f"{name}.weight": module.weight.detach().contiguous()
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name.startswith("model.layers.")
    }
    save_file(weights, args.out)
    zeros = sum(int((w == 0).sum()) for w in weights.values()) / sum(w.numel() for w in weights.values())
    print(json.dumps({
        "prune_seconds": round(seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "sparsity": round(zeros, 4),
        "llmcompressor": llmcompressor.__version__,
        "matrices": len(weights),
    }))


if __name__ == "__main__":
    main()
