"""Build the small calibration/evaluation bundle shipped in optimum_dpruner/data/ from ../shared/data.

Usage: python scripts/build_bundle.py [SHARED_DATA_DIR]   (default: ../shared/data)
Deterministic: the same input files give byte-identical outputs (gzip mtime fixed to 0).
"""

import gzip
import json
import os
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
OUT = os.path.join(os.path.dirname(__file__), "..", "optimum_dpruner", "data")


def read(rel):
    with open(os.path.join(SRC, rel), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def write_records(name, records):
    path = os.path.join(OUT, name)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        for record in records:
            gz.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
    print(f"{name}: {len(records)} records, {os.path.getsize(path):,} bytes")


def write(name, texts):
    write_records(name, [{"text": text} for text in texts])


def pubmed(rec):
    return rec["title"] + "\n" + rec["text"]


def casehold(rec):
    holding = rec["holding_" + rec["label"]]
    prompt = rec["citing_prompt"]
    return prompt.replace("<HOLDING>", holding) if "<HOLDING>" in prompt else prompt + " " + holding


os.makedirs(OUT, exist_ok=True)
write("general_train.jsonl.gz", [r["title"] + "\n" + r["text"] for r in read("general/wikipedia_train.jsonl")])
write("general_test.jsonl.gz", [r["title"] + "\n" + r["text"] for r in read("general/wikipedia_test.jsonl")])
write("medical_train.jsonl.gz", [pubmed(r) for r in read("medical/pubmed_train.jsonl")[:1000]])
write("medical_test.jsonl.gz", [pubmed(r) for r in read("medical/pubmed_test.jsonl")[:300]])
write("legal_train.jsonl.gz", [casehold(r) for r in read("legal/casehold_train.jsonl")[:1000]])
write("legal_test.jsonl.gz", [r["text"] for r in read("legal/us_legislation_300.jsonl")])

# downstream evaluation tasks (optimum_dpruner.evaluation.tasks): the test halves only, fields the tasks read
write_records("pubmedqa_test.jsonl.gz", [
    {k: r[k] for k in ("pmid", "question", "contexts", "final_decision")} for r in read("medical/pubmedqa_labeled.jsonl") if r["split"] == "test"
])
write_records("casehold_test.jsonl.gz", read("legal/casehold_test.jsonl"))
write_records("billsum_test.jsonl.gz", read("legal/billsum_test.jsonl"))
