"""Where the pruning time goes: each method's per-step breakdown against its data-pass bound, in one process.

For SparseGPT, Wanda and D-Pruner (the default and the paper preset) on SmolLM2-135M-Instruct with the library's
calibration defaults (32 general and 32 domain windows of 512 tokens, seed 0), this script prunes a fresh copy of
the model and reads the report's `breakdown` (`runtime.timers.StageTimer`: calibration data, capture, block forwards,
statistic updates, factorisation, mask selection, OBS updates, propagation, domain forward / backward / scoring,
masking). In the same process it measures the bounds the issue sets:
- `forward`: one forward of the decoder stack (no LM head, no hooks) over the general windows, one window per call
  as the pipeline runs them; a block-wise method must run every block twice (statistics, then the pruned outputs),
  so its bound is 2 x forward over the windows of its pass (general, or general + domain when mixed);
- `forward_backward`: the domain loss's forward and backward with gradients for the target weights only, no
  checkpointing, no hooks, over the domain windows (D-Pruner's gradient stage).
D-Pruner's bound is its block-wise pass's plus `forward_backward`.

    python benchmarks/profile_methods.py --out benchmarks/results/profile_methods.json

`--legacy` profiles the code before the speed work (commit 7f24171, which has no step timer) by timing its functions
from outside; run it from a checkout of that commit with this file copied in.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import time

import torch

RUNS = {
    "wanda": dict(method="wanda"),
    "sparsegpt": dict(method="sparsegpt"),
    "dpruner": dict(method="dpruner"),
    "dpruner paper": "paper",
    "dpruner, no checkpointing": dict(method="dpruner", gradient_checkpointing=False),  # the domain stage's other setting
}


def _bounds(model, general, domain, targets) -> dict[str, float]:
    """Seconds of one forward of the decoder stack over `general` and of forward+backward over `domain`."""
    out = {}
    with torch.no_grad():
        start = time.perf_counter()
        for ids in general:
            model.model(input_ids=ids, use_cache=False)
        out["forward_general"] = time.perf_counter() - start
        start = time.perf_counter()
        for ids in domain:
            model.model(input_ids=ids, use_cache=False)
        out["forward_domain"] = time.perf_counter() - start
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    for module in targets.values():
        module.weight.requires_grad_(True)
    model.train()
    start = time.perf_counter()
    for ids in domain:
        model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
        for module in targets.values():
            module.weight.grad = None
    out["forward_backward_domain"] = time.perf_counter() - start
    model.eval()
    for p, flag in flags:
        p.requires_grad_(flag)
    return out


class _LegacyTimer:
    """Times the pre-speed-work code's functions from outside (it has no step timer)."""

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self._depth_stats = 0.0

    def wrap(self, owner, attr, key):
        original = getattr(owner, attr)
        timer = self

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timer.seconds[key] += time.perf_counter() - start

        setattr(owner, attr, timed)

    def install(self):
        from optimum_dpruner import gradients, pipeline
        from optimum_dpruner.methods import dpruner, sparsegpt, wanda

        self.wrap(pipeline, "capture_block_inputs", "capture")
        for cls in (sparsegpt.SparseGPTMethod, wanda.WandaMethod):
            self.wrap(cls, "add_batch", "statistics")
        self.wrap(sparsegpt.SparseGPTMethod, "prune", "obs (factorisation + masks + updates)")
        self.wrap(sparsegpt, "inverse_hessian_factor", "factorisation (inside obs)")
        self.wrap(wanda.WandaMethod, "prune", "mask_selection")
        self.wrap(pipeline.BlockInputs, "run_block", "block forwards (incl. statistics)")
        self.wrap(gradients, "regularised_gradient", "domain_scoring")
        self.wrap(gradients, "taylor_importance", "domain_scoring")
        del dpruner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--legacy", action="store_true", help="profile the pre-speed-work code (see module doc)")
    parser.add_argument("--num-samples", type=int, default=None, help="general and domain windows (default: the library's 32)")
    parser.add_argument("--seq-len", type=int, default=None, help="tokens per window (default: the library's 512)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from optimum_dpruner import DPruner, DPrunerConfig
    from optimum_dpruner.models.default_model import ensure_default_model

    legacy = _LegacyTimer() if args.legacy else None
    if legacy:
        legacy.install()
        from optimum_dpruner.pipeline import iter_target_linears
    else:
        from optimum_dpruner.stages import iter_target_linears
    path = ensure_default_model()
    record = {"command": "python " + " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{os.cpu_count()} CPU threads ({platform.processor() or platform.machine()}), torch "
                         f"{torch.__version__}, {args.threads} torch threads", "runs": []}
    for name in args.runs:
        spec = RUNS[name]
        sizes = {k: v for k, v in (("num_samples", args.num_samples), ("domain_num_samples", args.num_samples),
                                   ("seq_len", args.seq_len)) if v is not None}
        if spec == "paper":  # the code before issue 17 had the paper's recipe as its default
            config = DPrunerConfig(method="dpruner", **sizes) if legacy else DPrunerConfig.paper(**sizes)
        else:
            config = DPrunerConfig(**spec, **sizes)
        pruner = DPruner.from_pretrained(path, config=config)
        general = pruner._samples("builtin:general", config.num_samples)
        domain = pruner._samples("builtin:medical", config.domain_num_samples)
        bounds = _bounds(pruner.model, general, domain, iter_target_linears(pruner.model, config))
        if legacy:
            legacy.seconds.clear()
        data = ("builtin:general", "builtin:medical") if config.method == "dpruner" else ("builtin:general",)
        start, cpu = time.perf_counter(), time.process_time()
        report = pruner.prune(*data, progress=False).report
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        breakdown = dict(legacy.seconds) if legacy else dict(report.breakdown)
        if legacy and "block forwards (incl. statistics)" in breakdown:
            breakdown["block forwards (excl. statistics)"] = breakdown.pop("block forwards (incl. statistics)") - breakdown.get("statistics", 0.0)
        # the default D-Pruner reconstructs on the mixed windows (the code before issue 17 had no such pass)
        uses_mix = config.method == "dpruner" and (getattr(config, "reconstruction", None) or ("none" if legacy else "obs")) == "obs"
        pass_windows = bounds["forward_general"] + (bounds["forward_domain"] if uses_mix else 0.0)
        bound = 2 * pass_windows
        if config.method == "dpruner":
            if getattr(config, "general_importance", "sparsegpt") != "none":
                bound += 2 * bounds["forward_general"]  # the separate general stage is a block-wise pass too
            bound += bounds["forward_backward_domain"]
            if not uses_mix:
                bound -= 2 * pass_windows  # the paper's recipe has no reconstruction pass
        total = sum(report.stage_seconds.values())
        run = {"run": name, "config": config.to_dict(), "stage_seconds": {k: round(v, 2) for k, v in report.stage_seconds.items()},
               "breakdown": {k: round(v, 2) for k, v in breakdown.items()}, "total_seconds": round(total, 1),
               "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "bounds": {k: round(v, 1) for k, v in bounds.items()},
               "bound_seconds": round(bound, 1), "total_over_bound": round(total / bound, 2),
               "peak_rss_mib": round(max(report.peak_rss_bytes.values()) / 2**20)}
        record["runs"].append(run)
        print(json.dumps({k: run[k] for k in ("run", "total_seconds", "cpu_seconds", "bound_seconds", "total_over_bound",
                                              "breakdown")}), flush=True)
        with open(args.out, "w") as f:
            json.dump(record, f, indent=1)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
        f.write(markdown(record))


def markdown(record: dict) -> str:
    lines = [f"Command: `{record['command']}`", "", f"Date: {record['date']}; {record['machine']}.", ""]
    for run in record["runs"]:
        lines += [f"**{run['run']}**: {run['total_seconds']:.0f} s ({run.get('cpu_seconds', '-')} CPU s; stages {run['stage_seconds']}), bound "
                  f"{run['bound_seconds']:.0f} s, ratio {run['total_over_bound']:.2f}, peak RSS {run['peak_rss_mib']} MiB; "
                  f"bounds measured: {run['bounds']}", "", "| step | seconds | share |", "|---|---|---|"]
        for step, seconds in run["breakdown"].items():
            lines.append(f"| {step} | {seconds:.1f} | {seconds / run['total_seconds']:.0%} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
