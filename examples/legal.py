"""Extract a legal model from SmolLM2-135M-Instruct with D-Pruner (general + CaseHOLD calibration, 50%).

    python examples/legal.py
    python examples/legal.py --domain-dataset my_contracts.jsonl --output out/legal
"""

from extract import main

if __name__ == "__main__":
    main(domain="legal")
