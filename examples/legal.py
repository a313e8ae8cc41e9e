"""Extract a legal model from SmolLM2-135M-Instruct with D-Pruner (general + CaseHOLD calibration, 50%).

The method page's hint for legal text is a smaller regulariser weight (lambda = 0.001).

    python examples/legal.py
    python examples/legal.py --domain-dataset my_contracts.jsonl --output out/legal
"""

from extract import main

if __name__ == "__main__":
    main(domain="legal", lambda_reg=0.001)
