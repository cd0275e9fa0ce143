"""Cloze prompts against a classification head with few labels: SST-2 with 32 and 256 examples.

    python benchmarks/cloze_few_shot.py                                   # minilm, 32 and 256 examples, 3 seeds
    python benchmarks/cloze_few_shot.py --cloze-model runs/bench-dapt/dapt # cloze through an adapted MLM head

For each size and seed: a balanced sample of SST-2 train for training and another of the same size
for model selection (as LM-BFF does), then the standard head (`--task classification`) and the
cloze prompt ("{text} It was [MASK]." with 0=terrible, 1=great) fine-tuned with the same steps,
both tested on the 872 SST-2 dev sentences. minilm ships no MLM head, so its cloze head starts
from scratch: give --cloze-model a `stellartune pretrain` output for a trained one.

Writes runs/bench-cloze/summary.json and prints dev accuracy (mean and each seed).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

import numpy as np

import stellartune

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2"
TEMPLATE, VERBALIZER = "{text} It was [MASK].", "0=terrible,1=great"


def read_sst2(name: str) -> list[tuple[str, str]]:
    with open(DATA / name, encoding="utf-8") as handle:
        return [(row[0].strip(), row[1]) for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)][1:]


def balanced(rows, count: int, rng) -> list[tuple[str, str]]:
    picked = []
    for label in ("0", "1"):
        pool = [r for r in rows if r[1] == label]
        picked += [pool[i] for i in rng.choice(len(pool), count // 2, replace=False)]
    return picked


def write_tsv(path: Path, rows) -> str:
    path.write_text("sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8")
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,256", help="Training examples per run, comma-separated")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--model", default="minilm", help="Base of the standard head")
    parser.add_argument("--cloze-model", default="minilm", help="Base of the cloze classifier")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--output", default="runs/bench-cloze")
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"needs SST-2 in {DATA}")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    train_rows, dev = read_sst2("train.tsv"), str(DATA / "dev.tsv")
    common = dict(max_steps=args.steps, batch_size=args.batch_size, lr=args.lr, eval_steps=max(args.steps // 10, 1),
                  max_length=128, progress=False)
    results = {}
    for size in map(int, args.sizes.split(",")):
        scores = {"head": [], "cloze": []}
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            sample = balanced(train_rows, 2 * size, rng)
            train = write_tsv(output / f"train-{size}-{seed}.tsv", sample[0::2])
            select = write_tsv(output / f"select-{size}-{seed}.tsv", sample[1::2])
            head = stellartune.fit(model=args.model, train=train, eval=select, output=str(output / f"head-{size}-{seed}"),
                                   seed=seed, **common)
            cloze = stellartune.fit(model=args.cloze_model, task="cloze", template=TEMPLATE, verbalizer=VERBALIZER,
                                    train=train, eval=select, output=str(output / f"cloze-{size}-{seed}"), seed=seed,
                                    **common)
            scores["head"].append(head.evaluate(dev)["accuracy"])
            scores["cloze"].append(cloze.evaluate(dev)["accuracy"])
        results[size] = {name: {"mean": statistics.mean(v), "each_seed": v} for name, v in scores.items()}
    summary = {"settings": vars(args), "sst2_dev_accuracy": results}
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
