"""Did the speed work change SparseGPT's result beyond float rounding? The old and new code on the same windows.

Three steps, the second run once with this code and once from a checkout of 7f24171 (before issue 15) with
`PYTHONPATH` pointing at it:

    python benchmarks/legacy_masks.py windows --out W.safetensors [--order K]
    python benchmarks/legacy_masks.py prune --pattern 2:4 --windows W.safetensors --out new.safetensors
    (cd ../old && PYTHONPATH=. python ../main/benchmarks/legacy_masks.py prune --legacy --pattern 2:4 \
        --windows W.safetensors --out old.safetensors)
    python benchmarks/legacy_masks.py compare old.safetensors new.safetensors

`windows` writes the library's 32 x 512 general calibration windows (seed 0), visited in order K (0: the library's;
K > 0: the seeded permutation of `rounding_spread.py`); `prune` prunes SmolLM2 with SparseGPT at 50% on them
(2 torch threads) and writes the decoder linears' weights; `compare` prints how many mask entries differ (in all
and in the first two blocks) and each model's perplexity on 8 x 512-token test windows of Wikipedia and PubMed.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from common import PEER_SETS, test_perplexities
from safetensors.torch import load_file, save_file

SETS = {name: PEER_SETS[name] for name in ("wikipedia", "pubmed")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    windows = sub.add_parser("windows")
    windows.add_argument("--order", type=int, default=0)
    windows.add_argument("--out", required=True)
    prune = sub.add_parser("prune")
    prune.add_argument("--pattern", default="2:4")
    prune.add_argument("--windows", required=True)
    prune.add_argument("--legacy", action="store_true", help="the code of 7f24171 is on PYTHONPATH")
    prune.add_argument("--out", required=True)
    compare = sub.add_parser("compare")
    compare.add_argument("weights", nargs=2)
    args = parser.parse_args()
    torch.set_num_threads(2)

    from optimum_dpruner import DPruner, DPrunerConfig

    if args.step == "windows":
        from optimum_dpruner.data.calibration import calibration_samples

        pruner = DPruner.from_pretrained(config=DPrunerConfig(method="sparsegpt"))
        ids = torch.cat(calibration_samples("builtin:general", pruner.tokenizer, 32, 512, 0))
        if args.order:
            ids = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(args.order))]
        save_file({"input_ids": ids.contiguous()}, args.out)
    elif args.step == "prune":
        config = DPrunerConfig(method="sparsegpt", pattern=args.pattern)
        pruner = DPruner.from_pretrained(config=config)
        ids = load_file(args.windows)["input_ids"]
        samples = [ids[i : i + 1] for i in range(len(ids))]
        start = time.perf_counter()
        if args.legacy:  # 7f24171: pipeline.prune_blockwise takes the method class
            from optimum_dpruner.methods import SparseGPTMethod
            from optimum_dpruner.pipeline import prune_blockwise

            prune_blockwise(pruner.model, samples, SparseGPTMethod, config, progress=False)
        else:
            from optimum_dpruner.stages import prune_blockwise
            from optimum_dpruner.methods import SparseGPTMethod

            prune_blockwise(pruner.model, samples, SparseGPTMethod(config), config, progress=False)
        print(json.dumps({"prune_seconds": round(time.perf_counter() - start, 1)}))
        save_file({f"{name}.weight": module.weight.detach().contiguous() for name, module in pruner.model.named_modules()
                   if isinstance(module, torch.nn.Linear) and name.startswith("model.layers.")}, args.out)
    else:
        a, b = (load_file(path) for path in args.weights)
        differing = {k: int(((a[k] == 0) != (b[k] == 0)).sum()) for k in a}
        total = sum(v.numel() for v in a.values())
        pruner = DPruner.from_pretrained(config=DPrunerConfig(method="sparsegpt"))
        parameters = dict(pruner.model.named_parameters())
        ppl = {}
        for path, weights in zip(args.weights, (a, b)):
            with torch.no_grad():
                for name, tensor in weights.items():
                    parameters[name].copy_(tensor)
            ppl[path] = test_perplexities(pruner.model, pruner.tokenizer, SETS, 8)
        print(json.dumps({
            "mask_entries_differing": sum(differing.values()), "of": total,
            "first_two_blocks": {k: v for k, v in differing.items() if k.startswith(("model.layers.0.", "model.layers.1."))},
            "perplexity": ppl,
        }, indent=1))


if __name__ == "__main__":
    main()
