"""Training throughput of recovery: masked LoRA on a pruned SmolLM2 against the same Trainer running peft's plain
LoRA on the dense model (what `recover(..., allow_dense=True)` does), both at `RecoveryConfig()`'s recipe.

    python benchmarks/recovery_throughput.py --out benchmarks/results/recovery_throughput.json

The arms run in one process, one after another, `--repeats` times in turn (A B C A B C ...), so that drift of the
machine falls on every arm alike. Each run trains `--steps` optimizer steps on the same stream (same seed) and
times the steps alone (`on_step_begin` to `on_step_end`), leaving out the first `--skip` (allocator warm-up).
Arms (`--arms`), each "<model>-<mode>":
- `dense-lora`: the unpruned model; every layer has no zeros, so it is peft's own LoRA forward;
- `masked-lora`: the model pruned to 50% (magnitude: the mask's cost does not depend on which weights are zero),
  with the masked update added to the frozen weight (one matmul a layer);
- `unfused-lora`: the same with that fusion turned off (base layer, then the masked update as a second matmul);
- `dense-full` / `masked-full`: full fine-tuning of the target linears, without and with the mask (gradient hooks,
  re-zeroing after each step).

`masked-lora` against `dense-lora` is not the same computation: the gradient of the masked update `delta W * M`
needs `g^T x`, a matmul of the layer's size that plain LoRA never forms (its update stays rank r), while the masked
forward runs one matmul with `W + delta W * M` where peft runs the base layer and two rank-r matmuls. The mask's own
overhead is `masked-full` against `dense-full`, the same computation plus the gradient hooks and re-zeroing.

A LoRA step of SmolLM2 on one 256-token window takes ~1.4-2.5 s on 2 CPU cores, a full one ~30% more: the default (24
steps, 3 repeats, 5 arms) runs ~15 minutes. Run it alone: another job on the machine shifts every number.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import command_line, smollm2, write_result  # noqa: E402

ARMS = ("dense-lora", "masked-lora", "unfused-lora", "dense-full", "masked-full")


def _step_times():
    from transformers import TrainerCallback

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.seconds, self._start = [], 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self._start)

    return StepTimes()


def markdown(record: dict) -> str:
    """The table of step times and throughput ratios."""
    tokens = record["recovery_configs"]["lora"]["batch_size"] * record["recovery_configs"]["lora"]["seq_len"]
    lines = [f"# Recovery throughput (SmolLM2, {tokens} tokens a step, {record['threads']} threads)", "",
             f"`{record['command']}`", "",
             f"Median over {record['repeats']} alternating repeats of the mean step time (steps {record['skip'] + 1}-{record['steps']}"
             f" of each run); throughput against a dense arm is per repeat, median [min, max].", "",
             "| arm | s/step | tokens/s | vs dense-lora | vs dense-full |", "|---|---|---|---|---|"]
    for arm, a in record['arms'].items():
        cells = []
        for reference in ("dense-lora", "dense-full"):
            r = a.get(f"throughput_vs_{reference}")
            cells.append(f"{r['median']:.3f}x [{r['min']:.3f}, {r['max']:.3f}]" if r else ("1" if arm == reference else "-"))
        lines.append(f"| {arm} | {a['median_seconds_per_step']:.3f} | {a['tokens_per_second']:.0f} | " + " | ".join(cells) + " |")
    lines += ["", "The mask's overhead is `masked-full` against `dense-full` (the same computation plus the mask's hooks and "
              "re-zeroing). `masked-lora` against `dense-lora` is a different computation: the masked update's gradient "
              "needs `g^T x`, a layer-size matmul plain LoRA does not form, and its forward runs one fused matmul where "
              "peft's runs the base layer and two rank-r ones."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--skip", type=int, default=2, help="first steps of each run left out of the timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    from optimum_dpruner import DPruner, DPrunerConfig, RecoveryConfig, recover
    from optimum_dpruner.recovery.lora import MaskedLoraLinear

    dense, tokenizer = smollm2(args.threads)
    pruned = DPruner(copy.deepcopy(dense), tokenizer, DPrunerConfig(method="magnitude", sparsity=0.5)).prune(
        progress=False).model
    configs = {mode: RecoveryConfig(mode=mode, max_steps=args.steps, warmup_steps=0, logging_steps=args.steps)
               for mode in ("lora", "full")}
    fusable = MaskedLoraLinear._fusable
    times: dict[str, list[float]] = {arm: [] for arm in args.arms}
    for repeat in range(args.repeats):
        for arm in args.arms:
            kind, mode = arm.split("-")
            MaskedLoraLinear._fusable = fusable if kind != "unfused" else (lambda self, *a: False)
            timer = _step_times()
            recover(copy.deepcopy(dense if kind == "dense" else pruned), "builtin:general", "builtin:medical",
                    configs[mode], tokenizer=tokenizer, allow_dense=kind == "dense", progress=False, callbacks=[timer])
            run = timer.seconds[args.skip:]
            times[arm].append(sum(run) / len(run))
            print(f"repeat {repeat} {arm}: {times[arm][-1]:.3f} s/step", flush=True)
    MaskedLoraLinear._fusable = fusable
    tokens = configs["lora"].batch_size * configs["lora"].seq_len
    arms = {arm: {"seconds_per_step": [round(s, 4) for s in t], "median_seconds_per_step": round(statistics.median(t), 4),
                  "tokens_per_second": round(tokens / statistics.median(t), 1)} for arm, t in times.items()}
    for arm in args.arms:
        for reference in ("dense-lora", "dense-full"):
            if reference in times and arm != reference:  # throughput(arm) / throughput(reference), per repeat
                ratios = [d / m for d, m in zip(times[reference], times[arm])]
                arms[arm][f"throughput_vs_{reference}"] = {"median": round(statistics.median(ratios), 3),
                                                           "min": round(min(ratios), 3), "max": round(max(ratios), 3)}
    record = {"command": command_line(__file__, sys.argv[1:] if argv is None else argv), "date": time.strftime("%Y-%m-%d"),
              "threads": args.threads, "steps": args.steps, "skip": args.skip, "repeats": args.repeats,
              "recovery_configs": {m: c.to_dict() for m, c in configs.items()}, "arms": arms}
    write_result(args.out, record, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
