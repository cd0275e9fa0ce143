"""Domain adaptation on IMDB: continued MLM pretraining of minilm on IMDB reviews, then the same
fine-tuning from it and from the original minilm.

    python benchmarks/domain_adaptation.py                          # full: 25,000 reviews, 1 epoch of MLM
    python benchmarks/domain_adaptation.py --corpus-docs 500 --pretrain-steps 30 --labeled 200 --test 200 --seeds 1

1. pretrain: `stellartune pretrain` on the texts of IMDB's train reviews (labels unused), packed
   blocks of --pretrain-length tokens, token masking; 2% of them held out for the MLM loss.
2. fine-tune: 1,000 labeled IMDB train reviews (balanced, seeded), tested on 2,000 IMDB test
   reviews, which pretraining never saw; once from minilm, once from the adapted model, with
   identical settings and seeds.

Writes runs/bench-dapt/summary.json and prints test accuracy (mean and each seed) for both.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tarfile
import time
from pathlib import Path

import numpy as np

import stellartune

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imdb" / "aclImdb_labeled.tar.gz"


def read_imdb() -> dict[str, list[tuple[str, str]]]:
    """{"train": [(text, pos|neg)], "test": [...]}, HTML line breaks turned into spaces."""
    splits = {"train": [], "test": []}
    with tarfile.open(DATA) as archive:
        for member in archive:
            parts = member.name.split("/")  # aclImdb/train/pos/123_9.txt
            if len(parts) == 4 and parts[1] in splits and parts[2] in ("pos", "neg"):
                text = archive.extractfile(member).read().decode("utf-8").replace("<br />", " ")
                splits[parts[1]].append((" ".join(text.split()), parts[2]))
    return splits


def balanced_sample(reviews: list[tuple[str, str]], count: int, seed: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    picked = []
    for label in ("pos", "neg"):
        pool = [r for r in reviews if r[1] == label]
        picked += [pool[i] for i in rng.choice(len(pool), count // 2, replace=False)]
    return [picked[i] for i in rng.permutation(len(picked))]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def fine_tune(model: str, train: Path, test: Path, output: Path, args, seed: int) -> float:
    tuned = stellartune.fit(model=model, train=str(train), output=str(output), epochs=args.epochs, lr=args.lr,
                            batch_size=args.batch_size, max_length=args.max_length, pooling=args.pooling,
                            eval_split=0.1, seed=seed, progress=False)
    return tuned.evaluate(str(test), batch_size=64)["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus-docs", type=int, default=None, help="Pretrain on this many train reviews (default: all 25,000)")
    parser.add_argument("--pretrain-epochs", type=float, default=1.0)
    parser.add_argument("--pretrain-steps", type=int, default=None, help="Stop pretraining after this many steps")
    parser.add_argument("--pretrain-length", type=int, default=128)
    parser.add_argument("--pretrain-lr", type=float, default=1e-4)
    parser.add_argument("--masking", default="token", choices=("token", "whole-word", "span"))
    parser.add_argument("--labeled", type=int, default=1000, help="Labeled train reviews for fine-tuning")
    parser.add_argument("--test", type=int, default=2000, help="Test reviews")
    parser.add_argument("--seeds", type=int, default=3, help="Fine-tuning seeds (sample and initialisation)")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--pooling", default="mean", help="minilm is a mean-pooled sentence encoder; its pooler is stale")
    parser.add_argument("--output", default="runs/bench-dapt")
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"needs IMDB in {DATA}")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    imdb = read_imdb()

    # ---- 1. continued pretraining on review texts
    corpus = [text for text, _ in imdb["train"]][: args.corpus_docs]
    (output / "corpus.txt").write_text("\n".join(corpus) + "\n", encoding="utf-8")
    started = time.time()
    pretrained = stellartune.pretrain(model="minilm", train=str(output / "corpus.txt"), output=str(output / "dapt"),
                                      epochs=args.pretrain_epochs, max_steps=args.pretrain_steps,
                                      max_length=args.pretrain_length, lr=args.pretrain_lr, masking=args.masking,
                                      eval_split=0.02, batch_size=32, progress=False)
    pretrain_seconds = time.time() - started
    before = json.loads((output / "dapt" / "metrics.json").read_text())["before"]

    # ---- 2. the same fine-tuning from both starting points
    test = write_csv(output / "test.csv", balanced_sample(imdb["test"], args.test, seed=0))
    accuracy = {"minilm": [], "minilm + IMDB MLM": []}
    for seed in range(args.seeds):
        train = write_csv(output / f"train-{seed}.csv", balanced_sample(imdb["train"], args.labeled, seed=100 + seed))
        accuracy["minilm"].append(fine_tune("minilm", train, test, output / f"base-{seed}", args, seed))
        accuracy["minilm + IMDB MLM"].append(fine_tune(str(output / "dapt"), train, test, output / f"dapt-{seed}", args, seed))

    summary = {"pretraining": {"documents": len(corpus), "held_out_mlm_loss_before": before["mlm_loss"],
                               "held_out_mlm_loss_after": pretrained["mlm_loss"],
                               "held_out_masked_accuracy_after": pretrained["masked_accuracy"],
                               "seconds": round(pretrain_seconds, 1)},
               "settings": vars(args),
               "test_accuracy": {name: {"mean": statistics.mean(values), "each_seed": values}
                                 for name, values in accuracy.items()}}
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
