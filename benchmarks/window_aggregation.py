"""How a long text's windows are best joined (issue 32: "mean or max of logits, or ...: measure which pays").

    python benchmarks/window_aggregation.py    # IMDB 1,000 -> 2,000 reviews (~20 min), BBC News 500 -> 445 (~17 min)

On each set, trains two models as `long_documents.py` does (`minilm`, seed 42, nothing but --train and the
reading): `no flags` (windows of 512, trained on every window) and `truncate 512` (trained on each text's first
512 tokens). Each reads the test texts in windows of 512, and the windows' logits are joined into one answer
per text in each of these ways: the first window only (truncation at predict time), the last window only, the
mean of the logits (stellartune's), the mean of the probabilities, the logits weighted by each window's tokens or
by its new tokens (those its neighbour before did not read), and the most confident window. Accuracy on all
texts and on the long ones (those over 512 tokens); results go to window_aggregation.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

import stellartune
from long_documents import READINGS, SETS, write_csv
from stellartune.batching.logits import compute_logits
from stellartune.tasks.long_texts import SHARED

RESULTS = Path(__file__).with_name("window_aggregation.json")
SIZES = {"imdb": (1000, 2000), "bbc": (500, 445)}  # training and test texts
SEED = 42


def window_weights(text_of: torch.Tensor, lengths: torch.Tensor, max_length: int) -> dict[str, torch.Tensor]:
    """Each window's weight in its text's answer, for each way of joining that weights logits."""
    first = torch.ones(len(text_of), dtype=torch.bool)
    first[1:] = text_of[1:] != text_of[:-1]
    last = torch.ones(len(text_of), dtype=torch.bool)
    last[:-1] = text_of[1:] != text_of[:-1]
    shared = max_length // SHARED + 2  # the tokens a window shares with the one before, and its special tokens
    return {"first window": first.float(), "last window": last.float(), "mean of logits": torch.ones(len(text_of)),
            "weighted by tokens": lengths, "weighted by new tokens": torch.where(first, lengths, (lengths - shared).clamp(min=1))}


def joined(logits: torch.Tensor, text_of: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    texts = int(text_of.max()) + 1
    return torch.zeros(texts, logits.shape[1]).index_add_(0, text_of, logits * weights[:, None])


def answers(logits: torch.Tensor, text_of: torch.Tensor, lengths: torch.Tensor, max_length: int) -> dict:
    """Each way of joining: the class each text gets."""
    probabilities = logits.softmax(-1)
    confidence = probabilities.max(-1).values
    most = torch.full((int(text_of.max()) + 1,), -1.0).scatter_reduce(0, text_of, confidence, "amax")
    ways = {name: joined(logits, text_of, w) for name, w in window_weights(text_of, lengths, max_length).items()}
    ways["mean of probabilities"] = joined(probabilities, text_of, torch.ones(len(text_of)))
    ways["most confident window"] = joined(logits, text_of, (confidence == most[text_of]).float())
    return {name: scores.argmax(-1) for name, scores in ways.items()}


def scored(reading: str, train: Path, test: list[dict], folder: Path) -> dict:
    model = stellartune.fit(train=str(train), output=str(folder), seed=SEED, progress=False, **READINGS[reading])
    model.task.reading = "windows"  # every model reads the test texts whole; the ways differ in the joining
    examples = model.task.prepare([row["text"] for row in test], None, model.columns)
    encoded = model.task.encode(examples, model.tokenizer, model.max_length)
    logits = compute_logits(model.model, encoded, model.tokenizer).float()
    text_of, lengths = torch.as_tensor(encoded.text_of), torch.as_tensor(encoded.lengths, dtype=torch.float)
    gold = torch.tensor([model.labels.index(row["label"]) for row in test])
    long = torch.bincount(text_of) > 1
    row = {"long texts": int(long.sum())}
    for name, predicted in answers(logits, text_of, lengths, model.max_length).items():
        right = predicted == gold
        row[name] = {"all": right.float().mean().item(), "long": right[long].float().mean().item()}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in args.sets:
        train, test = SETS[name](*SIZES[name], SEED)
        with tempfile.TemporaryDirectory(prefix="window_aggregation-") as scratch:
            train_file = write_csv(Path(scratch) / "train.csv", train)
            results[name] = {reading: scored(reading, train_file, test, Path(scratch) / reading.replace(" ", "_"))
                             for reading in ("no flags", "truncate 512")}
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        print(table(name, results[name], len(train), len(test)) + "\n", flush=True)


def table(name: str, results: dict, train: int, test: int) -> str:
    lines = [f"{name}: {train} -> {test} texts ({results['no flags']['long texts']} over 512 tokens), seed {SEED}: "
             "accuracy on all texts (on the long ones)",
             "| joining the windows | " + " | ".join(f"trained: {reading}" for reading in results) + " |",
             "|---|" + "---|" * len(results)]
    for way in (way for way in results["no flags"] if way != "long texts"):
        lines.append(f"| {way} | " + " | ".join(f"{row[way]['all']:.4f} ({row[way]['long']:.4f})"
                                                for row in results.values()) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
