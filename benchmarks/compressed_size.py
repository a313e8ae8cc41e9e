"""Disk size of the compressed (bitmask + values) format against the dense checkpoint, on SmolLM2-135M-Instruct.

The model is pruned by magnitude (no calibration data) to 50 % unstructured and to 2:4, saved dense and with
`compressed=True`, in fp32 and in bf16 (the pruned fp32 model cast to bf16). Reported: the bytes of the weight files
and of the whole folder, the ratio compressed / dense, the save and load times, and two checks: the model restored
by `load_pretrained` has exactly the saved tensors, and `verify_sparsity` passes on the compressed folder.

Example (the numbers of benchmarks/results/compressed_size.md):
    python benchmarks/compressed_size.py --out benchmarks/results/compressed_size.json
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time

from common import command_line, write_result


def _bytes(folder: str, weights_only: bool) -> int:
    return sum(
        os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder) if not weights_only or f.endswith(".safetensors")
    )


def _measure(result, dtype_name: str, workdir: str) -> dict:
    import torch

    from optimum_dpruner import load_pretrained, verify_sparsity

    row: dict = {"pattern": result.config.pattern, "dtype": dtype_name, "sparsity": round(result.report.sparsity, 4)}
    folders = {}
    for kind in ("dense", "compressed"):
        start = time.perf_counter()
        folders[kind] = result.save_pretrained(
            os.path.join(workdir, f"{result.config.pattern.replace(':', 'of')}-{dtype_name}-{kind}"),
            compressed=kind == "compressed",
            base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        )
        row[f"{kind}_save_seconds"] = round(time.perf_counter() - start, 2)
        row[f"{kind}_weight_bytes"] = _bytes(folders[kind], weights_only=True)
        row[f"{kind}_folder_bytes"] = _bytes(folders[kind], weights_only=False)
    row["weight_ratio"] = round(row["compressed_weight_bytes"] / row["dense_weight_bytes"], 4)
    row["folder_ratio"] = round(row["compressed_folder_bytes"] / row["dense_folder_bytes"], 4)
    itemsize = torch.tensor([], dtype=getattr(torch, dtype_name)).element_size()
    row["target_ratio_expected"] = round(((1 - result.report.sparsity) * itemsize + 1 / 8) / itemsize, 4)
    start = time.perf_counter()
    restored = load_pretrained(folders["compressed"])
    row["compressed_load_seconds"] = round(time.perf_counter() - start, 2)
    original = result.model.state_dict()
    row["restored_tensors_identical"] = set(restored.state_dict()) == set(original) and all(
        torch.equal(t, original[k]) for k, t in restored.state_dict().items()
    )
    row["verify_sparsity_ok"] = verify_sparsity(folders["compressed"]).ok
    return row


def _markdown(record: dict) -> str:
    lines = [
        f"Command: `{record['command']}`",
        "",
        f"Date: {record['date']}, model {record['model']}, magnitude pruning, {record['threads']} CPU thread(s).",
        "",
        "| pattern | dtype | sparsity (targets) | dense weights MB | compressed weights MB | ratio | whole folder ratio "
        "| expected ratio on targets | save s dense / compressed | load s | identical after load | verify ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in record["rows"]:
        lines.append(
            f"| {r['pattern']} | {r['dtype']} | {r['sparsity']:.3f} | {r['dense_weight_bytes'] / 1e6:.1f} | "
            f"{r['compressed_weight_bytes'] / 1e6:.1f} | {r['weight_ratio']:.3f} | {r['folder_ratio']:.3f} | "
            f"{r['target_ratio_expected']:.3f} | {r['dense_save_seconds']:.1f} / {r['compressed_save_seconds']:.1f} | "
            f"{r['compressed_load_seconds']:.1f} | {r['restored_tensors_identical']} | {r['verify_sparsity_ok']} |"
        )
    lines += [
        "",
        "The target matrices (every Linear in the decoder blocks) shrink to (1 - sparsity) x itemsize + 1/8 byte per "
        f"weight; they hold {record['target_parameters'] / 1e6:.1f} M of the {record['total_parameters'] / 1e6:.1f} M "
        "parameters, and the rest (embeddings, norms) stays dense, so the whole checkpoint shrinks less. The saving is on disk and in transfer only: `load_pretrained` rebuilds the dense "
        "model, which is as large in memory, and as fast, as before.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/compressed_size.json", help="JSON result (markdown beside it)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)

    import torch

    from optimum_dpruner import DPruner, DPrunerConfig

    torch.set_num_threads(args.threads)
    base = DPruner.from_pretrained(config=DPrunerConfig(method="magnitude"), dtype="float32")
    rows, counts = [], {}
    with tempfile.TemporaryDirectory(prefix="dpruner-size-") as workdir:
        for pattern in ("unstructured", "2:4"):
            pruner = DPruner(copy.deepcopy(base.model), base.tokenizer, DPrunerConfig(method="magnitude", pattern=pattern))
            result = pruner.prune(progress=False)
            counts = {"target_parameters": result.report.target_numel, "total_parameters": result.report.total_parameters}
            rows.append(_measure(result, "float32", workdir))
            result.model.to(torch.bfloat16)
            rows.append(_measure(result, "bfloat16", workdir))
            del pruner, result
    record = {
        "command": command_line(__file__, argv or sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "model": "SmolLM2-135M-Instruct (embedded, fp32)",
        "threads": args.threads,
        **counts,
        "rows": rows,
    }
    write_result(args.out, record, _markdown)


if __name__ == "__main__":
    main()
