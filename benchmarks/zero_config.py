"""stellartune with no flags on real slices of the shared data, against the same runs at the Hugging Face
Trainer's default settings (issue 15).

    python benchmarks/zero_config.py                       # every slice, one seed
    python benchmarks/zero_config.py --slices sst2 conll --seeds 42 43 44

Each slice is trained with `stellartune.fit` and only the flags the slice names (`--epochs 1`, the
task's `--max-length`), so the `auto` settings decide the rest; with `--trainer-settings` each is also
trained at the Trainer's defaults (the architecture's own head, lr 5e-5, batch 8, no warmup, no weight
decay) in stellartune's loop, as a reference on slices the issue gives no Trainer figure for. Prints
the score on the slice's evaluation file, its spread over seeds and the wall time.

Not here yet: the Trainer itself over issue 15's learning-rate x batch grid (the anchors) and the
--full mode.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
import statistics
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TRAINER_SETTINGS = {"pooling": "model", "lr": 5e-5, "batch_size": 8, "warmup_ratio": 0.0, "weight_decay": 0.0}


def sst2(folder: Path) -> tuple[Path, Path, dict]:
    """The last 2,000 SST-2 training sentences -> dev, one epoch."""
    lines = (DATA / "sst2" / "train.tsv").read_text().splitlines()
    (folder / "sst2.tsv").write_text("\n".join([lines[0], *lines[-2000:]]) + "\n")
    return folder / "sst2.tsv", DATA / "sst2" / "dev.tsv", {"epochs": 1}


def conll(folder: Path) -> tuple[Path, Path, dict]:
    """The first 2,000 CoNLL-2003 training sentences (-DOCSTART- lines dropped) -> test, one epoch."""
    text = (DATA / "conll2003" / "train.txt").read_text()
    sentences = [s.strip("\n") for s in text.split("\n\n") if s.strip() and not s.strip().startswith("-DOCSTART-")]
    (folder / "conll.txt").write_text("\n\n".join(sentences[:2000]) + "\n")
    return folder / "conll.txt", DATA / "conll2003" / "test.txt", {"epochs": 1}


def squad(folder: Path) -> tuple[Path, Path, dict]:
    """1,000 questions of the last 10 SQuAD v1.1 dev articles -> 400 of the 5 before them, 3 epochs."""
    articles = json.loads((DATA / "squad_v1.1" / "dev-v1.1.json").read_text())["data"]
    for name, part, count in (("squad_train.json", articles[-10:], 1000), ("squad_eval.json", articles[-15:-10], 400)):
        (folder / name).write_text(json.dumps({"version": "1.1", "data": first_questions(part, count)}))
    return folder / "squad_train.json", folder / "squad_eval.json", {"task": "qa", "max_length": 256}


def first_questions(articles: list[dict], count: int) -> list[dict]:
    kept, left = [], count
    for article in articles:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            questions = paragraph["qas"][:left]
            left -= len(questions)
            if questions:
                paragraphs.append({"context": paragraph["context"], "qas": questions})
        if paragraphs:
            kept.append({"title": article["title"], "paragraphs": paragraphs})
    return kept


def banking77(folder: Path) -> tuple[Path, Path, dict]:
    """2,000 BANKING77 training rows (a seeded sample: the file is sorted by intent) -> test, 3 epochs."""
    with open(DATA / "banking77" / "train.csv", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    random.Random(0).shuffle(rows)
    with open(folder / "banking77.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows[:2000]])
    return folder / "banking77.csv", DATA / "banking77" / "test.csv", {}


def stsb(folder: Path) -> tuple[Path, Path, dict]:
    """The first 2,000 STS-B training pairs -> dev, 3 epochs."""
    lines = (DATA / "stsb" / "train.tsv").read_text().splitlines()
    (folder / "stsb.tsv").write_text("\n".join(lines[:2001]) + "\n")
    return folder / "stsb.tsv", DATA / "stsb" / "dev.tsv", {}


def mrpc(folder: Path) -> tuple[Path, Path, dict]:
    """MRPC train -> dev (sentence pairs), 3 epochs."""
    return DATA / "mrpc" / "train.tsv", DATA / "mrpc" / "dev.tsv", {}


def goemotions(folder: Path) -> tuple[Path, Path, dict]:
    """The first 4,000 GoEmotions training comments -> dev (multi-label, 28 labels), 3 epochs."""
    lines = (DATA / "goemotions" / "train.tsv").read_text().splitlines()
    (folder / "goemotions.tsv").write_text("\n".join(lines[:4000]) + "\n")
    return folder / "goemotions.tsv", DATA / "goemotions" / "dev.tsv", {}


def sms_spam(folder: Path) -> tuple[Path, Path, dict]:
    """A seeded 80/20 split of the SMS Spam Collection, 3 epochs."""
    rows = [line.split("\t", 1) for line in (DATA / "sms_spam" / "SMSSpamCollection").read_text().splitlines()]
    random.Random(0).shuffle(rows)
    cut = int(0.8 * len(rows))
    for name, part in (("sms_train.tsv", rows[:cut]), ("sms_test.tsv", rows[cut:])):
        (folder / name).write_text("label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in part))
    return folder / "sms_train.tsv", folder / "sms_test.tsv", {}


SLICES = {"sst2": sst2, "conll": conll, "squad": squad, "banking77": banking77, "stsb": stsb, "mrpc": mrpc,
          "goemotions": goemotions, "sms_spam": sms_spam}
SCORES = ("accuracy", "f1", "pearson", "micro_f1")  # the first a run reports is its score


def run(train: Path, evaluation: Path, settings: dict, seed: int, output: Path) -> tuple[float, float]:
    import stellartune

    started = time.time()
    model = stellartune.fit(train=str(train), eval=str(evaluation), output=str(output), seed=seed, progress=False,
                            **settings)
    return next(model.metrics[k] for k in SCORES if k in model.metrics), time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", nargs="+", choices=list(SLICES), default=list(SLICES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--trainer-settings", action="store_true", help="Also train at the Trainer's defaults")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"needs the shared datasets in {DATA}")
    logging.getLogger("stellartune").setLevel(logging.WARNING)
    variants = {"no flags": {}, **({"Trainer's settings": TRAINER_SETTINGS} if args.trainer_settings else {})}
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for name in args.slices:
            train, evaluation, flags = SLICES[name](folder)
            for variant, settings in variants.items():
                results = [run(train, evaluation, {**flags, **settings}, seed, folder / f"{name}-{seed}")
                           for seed in args.seeds]
                scores, seconds = [r[0] for r in results], [r[1] for r in results]
                rows.append((name, variant, json.dumps(flags), statistics.mean(scores),
                             statistics.stdev(scores) if len(scores) > 1 else 0.0, statistics.mean(seconds)))
                print(f"{name:10} {variant:20} {rows[-1][2]:36} score {rows[-1][3]:.4f} ± {rows[-1][4]:.4f} "
                      f"over {len(scores)} seed(s), {rows[-1][5]:.0f} s", flush=True)
    print("\n| slice | run | flags | score | spread (sd) | wall s |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | `{row[2]}` | {row[3]:.4f} | {row[4]:.4f} | {row[5]:.0f} |")


if __name__ == "__main__":
    main()
