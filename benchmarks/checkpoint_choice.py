"""Which checkpoint a run keeps, and what each would have scored on the test texts: the rule that chooses it.

    python benchmarks/checkpoint_choice.py --sets bbc --seeds 44     # ~25 min: no flags and truncate 512
    python benchmarks/checkpoint_choice.py --sets imdb --seeds 42 43 44 --readings "no flags" "truncate 512"
    python benchmarks/checkpoint_choice.py --sets banking77 mrpc sms_spam --seeds 42 43   # zero_config's slices

A run given no --eval holds out a tenth of its training texts and keeps a checkpoint by how it scores on them.
With 500 BBC News articles that tenth is 50 articles, 2 points each. This trains as `long_documents.py` does
(IMDB, BBC News: each reading) or as `zero_config.py` does but without the slice's evaluation file (so a tenth
is held out; the file is then the test data), keeps every epoch's checkpoint, and scores each on the test data.
It keeps them by replacing the cleanup of a finished run in this process only (`prune_checkpoints` and
`remove_checkpoints`): the library has no setting for it. The last table gives each rule's test score from
the same checkpoints: the library's first rule (the first best), a tie keeping the later, the last, and the
library's rule since (the latest within one standard error of the best); the first table gives the epoch the
first and the last of these keep. Results go to checkpoint_choice.json, a run per key (an interrupted call
continues), with the step the library that ran kept ("kept": the first best, in the runs of 2026-12-07).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from long_documents import READINGS, SETS, SHORT, write_csv
from zero_config import SCORES, SLICES

import stellartune
from stellartune.training import engine, lifecycle
from stellartune.training.checkpoint import load_weights

RESULTS = Path(__file__).with_name("checkpoint_choice.json")
HELD_OUT = 0.1  # the share of the training texts a run holds out when given no --eval
SLICE_SETS = ("banking77", "mrpc", "sms_spam", "stsb", "goemotions")  # zero_config's slices of three epochs that
# have a test file apart from the training data (SQuAD's questions are too few to hold a tenth out)


class Trained(NamedTuple):
    """What a run trains on and how a checkpoint is scored."""
    train: Path
    flags: dict
    test_name: str  # for the results' key
    score: Callable  # model -> its score on the test data


def long_document_set(name: str, seed: int, scratch: Path) -> Trained:
    train, test = SETS[name](*SHORT[name], seed)
    texts, gold = [row["text"] for row in test], [row["label"] for row in test]
    score = lambda model: sum(p["label"] == g for p, g in zip(model.predict(texts), gold)) / len(gold)
    return Trained(write_csv(scratch / "train.csv", train), {}, str(len(test)), score)


def slice_set(name: str, seed: int, scratch: Path) -> Trained:
    """A zero_config slice trained without its evaluation file (so a tenth of its training rows is held out)
    and scored on that file."""
    data = SLICES[name](scratch)
    score = lambda model: first_score(stellartune.evaluate(model, str(data.evaluation)))
    return Trained(data.train, data.flags, data.evaluation.name, score)


def first_score(metrics: dict) -> float:
    return next(metrics[name] for name in SCORES if name in metrics)


def every_checkpoint(trained: Trained, reading: str, folder: Path, seed: int) -> dict:
    """The held-out score and the test score of each epoch's checkpoint, and the step the run kept."""
    model = stellartune.fit(train=str(trained.train), output=str(folder), seed=seed, progress=False,
                            **trained.flags, **READINGS[reading])
    held_out = {record["step"]: first_score(record["eval"])
                for record in map(json.loads, (folder / "log.jsonl").read_text().splitlines()) if "eval" in record}
    steps = {}
    for checkpoint in sorted((folder / "checkpoints").glob("step-*")):
        load_weights(checkpoint, model.model)
        step = int(checkpoint.name.split("-")[1])
        steps[str(step)] = {"held_out": held_out[step], "test": trained.score(model)}
    return {"kept": json.loads((folder / "metrics.json").read_text())["best_step"], "steps": steps,
            "training_rows": training_rows(trained.train)}


def training_rows(train: Path) -> int:
    """Rows of a training file (one a line, less a header): what a tenth held out is a tenth of."""
    return len(train.read_text(encoding="utf-8").splitlines()) - 1


def table(results: dict) -> str:
    """Each run's scores by epoch, and the epoch the library's first rule and its rule now keep."""
    then, now = RULES["first best (the library's until 2026-12-07)"], RULES[NOW]
    lines = [("| run | held-out accuracy by epoch | test score by epoch | kept: first best | kept now | "
              "test, first best | test, now |"), "|---|---|---|---|---|---|---|"]
    for key in sorted(results, key=order):
        steps, texts = epochs(results[key], key)
        held_out, test = [step["held_out"] for step in steps], [step["test"] for step in steps]
        kept_then, kept_now = then(held_out, texts), now(held_out, texts)
        name, reading, *_, seed = key.split("|")
        lines.append(f"| {name}, {reading}, seed {seed} | {', '.join(f'{s:.2f}' for s in held_out)} | "
                     f"{', '.join(f'{s:.4f}' for s in test)} | epoch {kept_then + 1} | epoch {kept_now + 1} | "
                     f"{test[kept_then]:.4f} | {test[kept_now]:.4f} |")
    return "\n".join(lines)


def order(key: str) -> tuple:
    name, reading, *_, seed = key.split("|")
    return name, reading, int(seed)


def epochs(run: dict, key: str) -> tuple[list[dict], int]:
    """A run's epochs in order, and how many texts it held out."""
    return ([run["steps"][s] for s in sorted(run["steps"], key=int)],
            round(HELD_OUT * run.get("training_rows", int(key.split("|")[2]))))


def standard_error(accuracy: float, texts: int) -> float:
    return (accuracy * (1 - accuracy) / texts) ** 0.5


NOW = "latest within one standard error of the best (the library's)"
RULES = {  # which epoch a run keeps, from its held-out accuracies and the held-out texts
    "first best (the library's until 2026-12-07)": lambda scores, texts: scores.index(max(scores)),
    "latest best (a tie keeps the later)": lambda scores, texts: max(i for i, s in enumerate(scores) if s == max(scores)),
    "last": lambda scores, texts: len(scores) - 1,
    NOW: lambda scores, texts: max(i for i, s in enumerate(scores) if s >= max(scores) - standard_error(max(scores), texts)),
}


def rules_table(results: dict) -> str:
    """Each rule's mean test accuracy by set and reading, over the seeds run: what each rule would have kept
    from the same checkpoints."""
    groups = {}
    for key in sorted(results, key=order):
        name, reading, *_ = key.split("|")
        groups.setdefault(f"{name}, {reading}", []).append(epochs(results[key], key))
    seeds = lambda runs: f"{len(runs)} seed" + ("s" if len(runs) > 1 else "")
    lines = [f"| rule | {' | '.join(f'{g} ({seeds(runs)})' for g, runs in groups.items())} |",
             "|---|" + "---|" * len(groups)]
    for rule, choose in RULES.items():
        means = [sum(steps[choose([s["held_out"] for s in steps], texts)]["test"] for steps, texts in runs) / len(runs)
                 for runs in groups.values()]
        lines.append(f"| {rule} | {' | '.join(f'{m:.4f}' for m in means)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=["bbc"], choices=[*SETS, *SLICE_SETS])
    parser.add_argument("--readings", nargs="+", default=["no flags", "truncate 512"], choices=list(READINGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[44])
    args = parser.parse_args()
    engine.prune_checkpoints = lambda folder, keep: None  # every checkpoint stays, in this process only
    lifecycle.remove_checkpoints = lambda folder: None
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in args.sets:
        readings = args.readings if name in SETS else ["no flags"]
        for seed in args.seeds:
            with tempfile.TemporaryDirectory(prefix="checkpoint_choice-") as scratch:
                trained = (long_document_set if name in SETS else slice_set)(name, seed, Path(scratch))
                for reading in readings:
                    key = f"{name}|{reading}|{training_rows(trained.train)}|{trained.test_name}|{seed}"
                    if key in results:  # an interrupted call continues
                        continue
                    folder = Path(scratch) / reading.replace(" ", "_").replace("+", "_")
                    results[key] = every_checkpoint(trained, reading, folder, seed)
                    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))
    print(rules_table(results))


if __name__ == "__main__":
    main()
