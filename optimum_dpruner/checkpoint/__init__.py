"""Checkpoint IO: what a pruned model is written as and read back from.

- `metadata`: the `config.json` sparsity block, library versions, strict readers of JSON and safetensors files;
- `compression`: the bitmask + values storage of target matrices, and `read_weights` for either layout;
- `serialization`: `save_pruned` (atomic, with the side car and card) and `load_pretrained`;
- `folders`: which output folders may be written or replaced, and the atomic swap;
- `card`: the model card; `plot`: the per-layer sparsity plot (with matplotlib); `base_model`: what the model was
  pruned from (hub id, licence), the one lookup that may ask the Hub;
- `verification`: `verify_sparsity` of a model or folder;
- `importance`: D-Pruner's saved scores (G and I) with the model fingerprint;
- `hub`: `push_to_hub` with retries.
"""
