"""Which checkpoint a run keeps, and what each would have scored on the test texts (issue 32's BBC News gap).

    python benchmarks/checkpoint_choice.py --sets bbc --seeds 44     # ~25 min: no flags and truncate 512

A run holds out a tenth of its training texts and keeps the checkpoint that scores best on them (the first, on
a tie). With 500 BBC News articles that tenth is 50 articles, 2 points each. This trains each reading as
`long_documents.py` does, keeps every epoch's checkpoint, then predicts the test texts with each of them. It
keeps them by replacing the cleanup of a finished run in this process only (`prune_checkpoints` and
`remove_checkpoints`): the library has no setting for it. Results go to checkpoint_choice.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import stellartune
import stellartune.training.engine as engine
import stellartune.training.lifecycle as lifecycle
from long_documents import READINGS, SETS, SHORT, write_csv
from stellartune.training.checkpoint import load_weights

RESULTS = Path(__file__).with_name("checkpoint_choice.json")


def every_checkpoint(reading: str, train: Path, test: list[dict], folder: Path, seed: int) -> dict:
    """The held-out score and the test accuracy of each epoch's checkpoint, and the step the run kept."""
    model = stellartune.fit(train=str(train), output=str(folder), seed=seed, progress=False, **READINGS[reading])
    texts, gold = [row["text"] for row in test], [row["label"] for row in test]
    accuracy = lambda: sum(p["label"] == g for p, g in zip(model.predict(texts), gold)) / len(gold)
    held_out = {record["step"]: record["eval"]["accuracy"]
                for record in map(json.loads, (folder / "log.jsonl").read_text().splitlines()) if "eval" in record}
    steps = {}
    for checkpoint in sorted((folder / "checkpoints").glob("step-*")):
        load_weights(checkpoint, model.model)
        step = int(checkpoint.name.split("-")[1])
        steps[str(step)] = {"held_out": held_out[step], "test": accuracy()}
    return {"kept": json.loads((folder / "metrics.json").read_text())["best_step"], "steps": steps}


def table(results: dict) -> str:
    lines = ["| run | held-out accuracy by epoch | test accuracy by epoch | kept | test, kept | test, last |",
             "|---|---|---|---|---|---|"]
    for key, run in results.items():
        steps = sorted(run["steps"], key=int)
        by_epoch = lambda what, digits: ", ".join(f"{run['steps'][s][what]:.{digits}f}" for s in steps)
        kept = steps.index(str(run["kept"])) + 1
        name, reading, _, _, seed = key.split("|")
        lines.append(f"| {name}, {reading}, seed {seed} | {by_epoch('held_out', 2)} | {by_epoch('test', 4)} | epoch {kept} | "
                     f"{run['steps'][str(run['kept'])]['test']:.4f} | {run['steps'][steps[-1]]['test']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=["bbc"], choices=list(SETS))
    parser.add_argument("--readings", nargs="+", default=["no flags", "truncate 512"], choices=list(READINGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[44])
    args = parser.parse_args()
    engine.prune_checkpoints = lambda folder, keep: None  # every checkpoint stays, in this process only
    lifecycle.remove_checkpoints = lambda folder: None
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in args.sets:
        for seed in args.seeds:
            train, test = SETS[name](*SHORT[name], seed)
            with tempfile.TemporaryDirectory(prefix="checkpoint_choice-") as scratch:
                train_file = write_csv(Path(scratch) / "train.csv", train)
                for reading in args.readings:
                    key = f"{name}|{reading}|{len(train)}|{len(test)}|{seed}"
                    folder = Path(scratch) / reading.replace(" ", "_").replace("+", "_")
                    results[key] = every_checkpoint(reading, train_file, test, folder, seed)
                    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
