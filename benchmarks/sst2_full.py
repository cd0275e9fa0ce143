"""Full SST-2 fine-tuning benchmark: train on all 67,349 sentences, report dev accuracy.

    python benchmarks/sst2_full.py --eval-steps 1000    # minilm, 1 epoch, mean pooling, lr 5e-5, batch 16
    python benchmarks/sst2_full.py --model mpnet-base --epochs 3

Prints the dev accuracy, wall time and training throughput, and writes them to
runs/bench-sst2/summary.json. Target with minilm: >= 90% dev accuracy.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import stellartune

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2"


def mean_throughput(log: Path) -> float:
    """Training examples per second over the logged steps (evaluation time excluded)."""
    rates = [r["examples_per_s"] for r in map(json.loads, log.read_text().splitlines()) if "examples_per_s" in r]
    return sum(rates) / len(rates)


def evaluations(log: Path) -> list[float]:
    return [r["eval"]["accuracy"] for r in map(json.loads, log.read_text().splitlines()) if "eval" in r]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--pooling", default="mean")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--eval-steps", type=int, default=None, help="Evaluate every N steps (default: each epoch); "
                        "the best evaluation's checkpoint is restored")
    parser.add_argument("--output", default="runs/bench-sst2")
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"needs SST-2 in {DATA}")
    started = time.time()
    model = stellartune.fit(model=args.model, train=str(DATA / "train.tsv"), eval=str(DATA / "dev.tsv"),
                            output=args.output, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                            pooling=args.pooling, precision=args.precision, max_length=128,
                            eval_steps=args.eval_steps)
    seconds = time.time() - started
    log = Path(args.output) / "log.jsonl"
    summary = {"model": args.model, "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
               "pooling": args.pooling, "precision": args.precision, "eval_steps": args.eval_steps,
               "dev_accuracy": model.metrics["accuracy"], "dev_accuracy_each_evaluation": evaluations(log),
               "wall_seconds": round(seconds, 1),
               "train_examples_per_s": round(mean_throughput(log), 1)}
    Path(args.output, "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
