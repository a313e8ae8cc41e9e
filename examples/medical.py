"""Extract a medical model from SmolLM2-135M-Instruct with D-Pruner (general + PubMed calibration, 50%).

    python examples/medical.py                       # embedded defaults
    python examples/medical.py --domain-dataset my_notes.jsonl --pattern 2:4 --output out/medical-24
    python examples/medical.py --paper               # D-Pruner exactly as the paper
"""

from extract import main

if __name__ == "__main__":
    main(domain="medical")
