#!/usr/bin/env bash
# Device check for a session that has a CUDA machine (issue 29, item 8): every `gpu`-marked test, then one SmolLM2
# prune + short recovery on CUDA compared with the same run on CPU. Meant to finish in under 5 minutes on an H200.
#
#   bash scripts/gpu_check.sh            # from the repository root; writes outputs/gpu_check/*.json
#
# Exit code: 0 when every gpu test passed and the CUDA recovery matches the CPU one (same zeros, no pruned weight
# made non-zero, final losses within 2%).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-outputs/gpu_check}
mkdir -p "$OUT"
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}

"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
timeout 180 "$PY" -m pytest -p no:cacheprovider -m gpu -q tests 2>&1 | tail -n 25

timeout 150 "$PY" - "$OUT" <<'PYEOF'
import json, sys, time
import torch
from optimum_dpruner import DPruner, DPrunerConfig, RecoveryConfig
from optimum_dpruner.models.default_model import ensure_default_model

out = sys.argv[1]
path = ensure_default_model()
prune = DPrunerConfig(method="sparsegpt", num_samples=8, seq_len=256)   # the quickest data-driven prune
recovery = RecoveryConfig(max_steps=8, seq_len=256, batch_size=2, warmup_steps=2, logging_steps=1)
runs = {}
for device in ("cuda", "cpu"):
    start = time.perf_counter()
    pruned = DPruner.from_pretrained(path, config=prune, dtype="float32", device=device).prune("builtin:general", progress=False)
    result = pruned.recover("builtin:general", "builtin:medical", recovery, device=device, progress=False)
    r = result.report
    runs[device] = {
        "seconds": round(time.perf_counter() - start, 1), "recovery_seconds": round(r.seconds, 1),
        "tokens_per_second": round(r.tokens_per_second, 1), "peak_memory_mib": round(r.peak_memory_bytes / 2**20),
        "losses": r.losses, "unmasked_after": r.unmasked_after, "verified": r.verified,
        "sparsity": [r.sparsity_before, r.sparsity_after],
        "zeros": {n: int(result.model.get_submodule(n).weight.eq(0).sum()) for n in result.targets},
    }
    print(device, {k: v for k, v in runs[device].items() if k not in ("zeros", "losses")}, flush=True)
cuda, cpu = runs["cuda"], runs["cpu"]
final = cuda["losses"][-1][1], cpu["losses"][-1][1]
checks = {
    "no pruned weight made non-zero": cuda["unmasked_after"] == 0 and cpu["unmasked_after"] == 0,
    "verify_sparsity on both": cuda["verified"] and cpu["verified"],
    "final loss within 2%": abs(final[0] - final[1]) <= 0.02 * final[1],
    # the masks come from two prunes (CUDA and CPU SparseGPT may break a near-tie differently): count, not positions
    "zeros per matrix within 0.1%": all(abs(cuda["zeros"][n] - cpu["zeros"][n]) <= 1e-3 * max(cpu["zeros"][n], 1) for n in cpu["zeros"]),
}
json.dump({"runs": runs, "checks": checks}, open(f"{out}/smollm2_recovery.json", "w"), indent=1)
print(json.dumps(checks, indent=1))
sys.exit(0 if all(checks.values()) else 1)
PYEOF
