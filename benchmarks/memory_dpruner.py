"""Peak memory of D-Pruner's domain stage against its budget: weights + G + I + activations (+10%).

On SmolLM2 (fp32, CPU) this measures, in one process, with RSS sampled every 5 ms:
- `base`: RSS after loading the model (the Python/torch runtime plus the weights);
- `activations`: the RSS rise of one forward + backward pass (gradient checkpointing on, as in the stage) in
  which no weight requires a gradient and the input embeddings do, so that the backward walks every layer:
  activations and activation gradients, no weight gradients;
- `G + I`: the bytes of the two fp32 score tensors per target matrix;
- `domain stage`: the RSS peak of `collect_dual_importance` over the same sequences.

    python benchmarks/memory_dpruner.py --out benchmarks/results/memory_dpruner.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from optimum_dpruner import DPrunerConfig
from optimum_dpruner.models.default_model import ensure_default_model
from optimum_dpruner.data.calibration import calibration_samples
from optimum_dpruner.stages.domain_gradients import collect_dual_importance
from optimum_dpruner.stages import iter_target_linears
from optimum_dpruner.stages.report import PruneReport
from optimum_dpruner.runtime.memory import StageMonitor, current_rss

MIB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--out", default="benchmarks/results/memory_dpruner.json")
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ensure_default_model()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    config = DPrunerConfig(seq_len=args.seq_len)
    samples = calibration_samples("builtin:medical", tokenizer, args.samples, args.seq_len, seed=0)
    targets = iter_target_linears(model, config)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    monitor, report = StageMonitor(interval=0.005), PruneReport("dpruner", "unstructured", 0.5)

    with torch.no_grad():  # page every weight in (safetensors loads lazily) before measuring the base
        model(input_ids=samples[0], use_cache=False)
    # activations: one checkpointed forward/backward without weight gradients
    for p in model.parameters():
        p.requires_grad_(False)
    model.activation_checkpointing_enable()
    model.train()
    base = current_rss()
    with monitor.measure(report, "activations"):
        embeds = model.get_input_embeddings()(samples[0]).detach().requires_grad_(True)
        model(inputs_embeds=embeds, labels=samples[0], use_cache=False).loss.backward()
        del embeds
    model.activation_checkpointing_disable()
    model.eval()
    activations = report.peak_rss_bytes["activations"] - base

    general = {n: torch.ones_like(m.weight, dtype=torch.float32) for n, m in targets.items()}  # same bytes as a real G
    scores = sum(g.numel() * 4 for g in general.values()) * 2  # G and I
    before_stage = current_rss()
    with monitor.measure(report, "domain_stage"):
        collect_dual_importance(model, samples, targets, general, config, progress=False)
    peak = report.peak_rss_bytes["domain_stage"]
    # G is allocated before the stage starts, I inside it: budget counts both on top of base
    budget = base + scores + activations
    row = {
        "command": "python " + " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "seq_len": args.seq_len,
        "samples": args.samples,
        "weights_mib": round(weights / MIB, 1),
        "base_rss_mib (runtime + weights)": round(base / MIB, 1),
        "G_plus_I_mib": round(scores / MIB, 1),
        "activations_mib": round(activations / MIB, 1),
        "rss_before_stage_mib (base + G)": round(before_stage / MIB, 1),
        "domain_stage_peak_rss_mib": round(peak / MIB, 1),
        "budget_mib (base + G + I + activations)": round(budget / MIB, 1),
        "peak_over_budget": round(peak / budget, 3),
        "within_budget_plus_10pct": peak <= 1.1 * budget,
    }
    print(json.dumps(row, indent=1))
    with open(args.out, "w") as f:
        json.dump(row, f, indent=1)


if __name__ == "__main__":
    main()
