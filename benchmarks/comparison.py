"""Command-line settings shared by the side-by-side benchmarks (stellartune against a Trainer recipe)."""

from __future__ import annotations

import argparse


def comparison_parser(doc: str, epochs: float, lr: float) -> argparse.ArgumentParser:
    """Model, epochs, learning rate, batch size and seed for both sides, and flags to run one side alone."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--epochs", type=float, default=epochs)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-hf", action="store_true", help="Only train with stellartune.")
    parser.add_argument("--skip-stellartune", action="store_true", help="Only train with the Trainer.")
    return parser
