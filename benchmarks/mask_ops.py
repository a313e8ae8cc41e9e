"""Cost of applying a pruning mask to tensors of SmolLM2's target-linear shapes (106 M entries, 50% pruned): the
operations a recovery step could use to zero the pruned positions of a gradient, a weight or a LoRA update.

    python benchmarks/mask_ops.py --out benchmarks/results/mask_ops.json

Each operation runs over all 210 matrices; the table gives the minimum over `--repeats` timed passes (after one
untimed pass) and, for the out-of-place forms, forward + backward through autograd (what a masked LoRA update costs
in a training step). A recovery run applies its masks as products with a uint8 multiplier
(`optimum_dpruner.recovery.masking.kept`); this file is why.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import command_line, write_result  # noqa: E402

#: SmolLM2-135M's target linears (q, k, v, o, gate, up, down) x 30 blocks
SHAPES = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)] * 30


def _best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def markdown(record: dict) -> str:
    lines = [f"# Applying a mask ({record['entries'] / 1e6:.0f} M entries, {record['threads']} threads)", "",
             f"`{record['command']}`", "", f"Minimum over {record['repeats']} passes, seconds for all matrices.", "",
             "| operation | seconds | vs masked_fill |", "|---|---|---|"]
    for group, reference in (("in_place", "masked_fill_ (bool)"), ("autograd", "masked_fill (bool)")):
        for name, seconds in record[group].items():
            lines.append(f"| {name} | {seconds:.3f} | {seconds / record[group][reference]:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import torch

    from optimum_dpruner.recovery.masking import kept

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    weights = [torch.randn(s) for s in SHAPES]
    pruned = [torch.rand(s) < 0.5 for s in SHAPES]
    keep = [kept(m) for m in pruned]
    keep_float = [k.float() for k in keep]
    zero = torch.zeros(())
    in_place = {
        "masked_fill_ (bool)": lambda: [w.masked_fill_(m, 0) for w, m in zip(weights, pruned)],
        "mul_ (uint8, kept)": lambda: [w.mul_(k) for w, k in zip(weights, keep)],
        "mul_ (bool)": lambda: [w.mul_(k.view(torch.bool)) for w, k in zip(weights, keep)],
        "mul_ (float32, 4x the memory)": lambda: [w.mul_(k) for w, k in zip(weights, keep_float)],
        "where (bool, out=)": lambda: [torch.where(m, zero, w, out=w) for w, m in zip(weights, pruned)],
        "add_ 1 (a pass over the weights)": lambda: [w.add_(1.0) for w in weights],
    }
    leaves = [w.clone().requires_grad_(True) for w in weights]

    def through_autograd(op):
        def run():
            for w, m, k in zip(leaves, pruned, keep):
                y = op(w, m, k)
                y.backward(torch.ones_like(y))
        return run

    autograd = {
        "masked_fill (bool)": through_autograd(lambda w, m, k: w.masked_fill(m, 0)),
        "mul (uint8, kept)": through_autograd(lambda w, m, k: w * k),
        "add 1 (no mask)": through_autograd(lambda w, m, k: w + 1),
    }
    record = {"command": command_line(__file__, sys.argv[1:] if argv is None else argv), "date": time.strftime("%Y-%m-%d"),
              "threads": args.threads, "repeats": args.repeats, "entries": sum(a * b for a, b in SHAPES),
              "in_place": {name: round(_best(fn, args.repeats), 4) for name, fn in in_place.items()},
              "autograd": {name: round(_best(fn, args.repeats), 4) for name, fn in autograd.items()}}
    write_result(args.out, record, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
