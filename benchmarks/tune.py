"""`stellartune tune` against the Hugging Face Trainer's `hyperparameter_search` (Optuna backend), issue 34: the
same model (`minilm`), slices, budget (12 trials), space, sampler (TPE, seed 42) and pruner (median, after 2
trials), each side scored as it scores its trials, against the best point of the Trainer's full lr x batch grid
on the same slice (benchmarks/zero_config_anchors.json).

    python benchmarks/tune.py                        # sst2, stsb and banking77, both sides side by side
    python benchmarks/tune.py --slices sst2 --sides stellartune
    python benchmarks/tune.py --memory               # resident memory over a 30-trial search (a few minutes)

The slices are zero_config.py's (SST-2: 2,000 sentences -> dev, 1 epoch; STS-B: 2,000 pairs -> dev; BANKING77:
2,000 rows -> test; 3 epochs), with their epochs fixed, so a trial costs what a grid point cost. The space:
learning rate 2e-5..2e-4 (log), batch size 8/16/32 (the grid's), warmup ratio 0..0.2, weight decay 0..0.1,
dropout 0..0.2. stellartune's first trial runs its no-flag defaults (its own choice; the Trainer has none).
Both evaluate once per epoch, where the pruner may stop a trial. The two sides run at once, one thread each (as
the grid's anchors ran: one thread a run, two at a time), each slice's result saved to tune.json as it ends.
Printed: each side's best score, its gap to the grid's best, its wall time (reading the data to the end of the
last trial) and the ratio, the trials pruned, and what the search leaves (stellartune: the best trial's run
folder; the Trainer: the best trial's settings, its model not kept).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from zero_config import ANCHORS, PROBLEMS, SCORES, SLICES

RESULTS = Path(__file__).with_name("tune.json")
TRIALS, SEED = 12, 42  # the budget; --trials for a quick look
SPACE = {"lr": (2e-5, 2e-4), "batch_size": [8, 16, 32], "warmup_ratio": (0.0, 0.2), "weight_decay": (0.0, 0.1),
         "dropout": (0.0, 0.2)}


def space_file(folder: Path, epochs: int) -> Path:
    """SPACE as `--space` takes it, the epochs fixed; layer-wise decay and re-initialisation left out (the Trainer
    has neither)."""
    path = folder / "space.yaml"
    path.write_text(f"lr: {{low: {SPACE['lr'][0]}, high: {SPACE['lr'][1]}, log: true}}\n"
                    f"batch_size: {SPACE['batch_size']}\n"
                    + "".join(f"{name}: {{low: {low}, high: {high}}}\n" for name in ("warmup_ratio", "weight_decay",
                                                                                   "dropout")
                              for low, high in [SPACE[name]])
                    + f"epochs: {epochs}\nlayer_lr_decay: null\nreinit_layers: null\n")
    return path


def stellartune_search(name: str, folder: Path, trials: int) -> dict:
    import stellartune

    started = time.time()
    data = SLICES[name](folder)
    epochs = data.flags.get("epochs", 3)
    flags = {k: v for k, v in data.flags.items() if k != "epochs"}
    summary = stellartune.tune(train=str(data.train), eval=str(data.evaluation), output=str(folder / "search"),
                               trials=trials, space=str(space_file(folder, epochs)), seed=SEED, progress=False,
                               **flags)
    return {"best": summary["best"], "seconds": round(time.time() - started, 1),
            "pruned": summary["trials"].get("pruned", 0), "defaults": summary["defaults"],
            "best_settings": summary["best_settings"], "kept": "the best trial's run folder"}


def trainer_search(name: str, folder: Path, trials: int) -> dict:
    """The Trainer's hyperparameter_search as its documentation shows it, over the same space, sampler and pruner."""
    import numpy as np
    import optuna
    from trainer_recipes import (
        arguments,
        examples,
        label_names,
        label_targets,
        sequence_score,
    )
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
    )
    from transformers.trainer_utils import IntervalStrategy

    from stellartune.models import resolve_model

    started = time.time()
    data, problem, path = SLICES[name](folder), PROBLEMS[name], resolve_model("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    train, evaluation = examples(problem, data.train), examples(problem, data.evaluation)
    names = label_names(problem, train.labels)

    def features(rows) -> list[dict]:
        encoded = tokenizer(rows.texts, rows.pairs, truncation=True, max_length=128)
        targets = label_targets(problem, rows.labels, names)
        return [{**{k: encoded[k][i] for k in encoded}, "labels": targets[i]} for i in range(len(rows.texts))]

    def model_init(trial):
        dropout = trial.suggest_float("dropout", *SPACE["dropout"]) if trial is not None else 0.1
        config = AutoConfig.from_pretrained(path, num_labels=len(names) or 1, hidden_dropout_prob=dropout,
                                            attention_probs_dropout_prob=dropout,
                                            problem_type="regression" if problem == "regression" else None)
        return AutoModelForSequenceClassification.from_pretrained(path, config=config)

    def hp_space(trial) -> dict:
        return {"learning_rate": trial.suggest_float("lr", *SPACE["lr"], log=True),
                "per_device_train_batch_size": trial.suggest_categorical("batch_size", SPACE["batch_size"]),
                # transformers 5: a warmup_steps under 1 is the ratio (warmup_ratio is gone)
                "warmup_steps": trial.suggest_float("warmup_ratio", *SPACE["warmup_ratio"]),
                "weight_decay": trial.suggest_float("weight_decay", *SPACE["weight_decay"])}

    def metrics(prediction) -> dict:
        outputs = np.asarray(prediction.predictions)
        return {"score": sequence_score(problem, outputs, list(prediction.label_ids), names)}

    training = arguments(folder, lr=5e-5, batch_size=8, epochs=data.flags.get("epochs", 3), seed=SEED)
    training.eval_strategy = IntervalStrategy.EPOCH  # evaluations the pruner reads
    trainer = Trainer(model_init=model_init, args=training, train_dataset=features(train),
                      eval_dataset=features(evaluation), data_collator=DataCollatorWithPadding(tokenizer),
                      compute_metrics=metrics)
    storage = f"sqlite:///{folder / 'trainer.db'}"  # only to count its pruned trials after
    best = trainer.hyperparameter_search(
        hp_space=hp_space, backend="optuna", n_trials=trials, direction="maximize",
        compute_objective=lambda m: m["eval_score"], sampler=optuna.samplers.TPESampler(seed=SEED),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2), storage=storage, study_name="trainer")
    seconds = time.time() - started
    pruned = optuna.load_study(study_name="trainer", storage=storage).get_trials(
        states=(optuna.trial.TrialState.PRUNED,))
    return {"best": best.objective, "seconds": round(seconds, 1), "pruned": len(pruned),
            "best_settings": best.hyperparameters, "kept": "the best trial's settings (its model is not kept)"}


SIDES = {"stellartune": stellartune_search, "trainer": trainer_search}


def memory_over_a_long_search(trials: int = 30) -> None:
    """A search's resident memory after each trial (trials.csv's resident_mb): a long search must not grow.
    300 SST-2 sentences -> 150 of dev, one epoch a trial, so that many trials take minutes."""
    import csv

    from zero_config import DATA

    import stellartune

    with tempfile.TemporaryDirectory() as folder:
        train, dev = Path(folder) / "train.tsv", Path(folder) / "dev.tsv"
        for path, source, rows in ((train, "train.tsv", 300), (dev, "dev.tsv", 150)):
            path.write_text("\n".join((DATA / "sst2" / source).read_text().splitlines()[: rows + 1]) + "\n")
        (Path(folder) / "space.yaml").write_text("epochs: 1\n")
        summary = stellartune.tune(train=str(train), eval=str(dev), output=f"{folder}/search", trials=trials,
                                   space=f"{folder}/space.yaml", progress=False)
        with open(summary["trials_table"], newline="") as handle:
            memory = [round(float(row["user_attrs_resident_mb"])) for row in csv.DictReader(handle)
                      if row["user_attrs_resident_mb"]]
    print(f"resident memory after each of {len(memory)} finished trials (MB): {memory}\n"
          f"after the first: {memory[0]}, after the last: {memory[-1]} ({memory[-1] - memory[0]:+d} MB)")


def run_side(side: str, slices: list[str], trials: int) -> None:
    torch.set_num_threads(1)
    for name in slices:
        with tempfile.TemporaryDirectory() as folder:
            result = {**SIDES[side](name, Path(folder), trials), "threads": torch.get_num_threads()}
        saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        saved[f"{side}|{name}|{trials}"] = result
        RESULTS.write_text(json.dumps(saved, indent=1))


def grid_best(name: str) -> float:
    runs = [r for r in json.loads(ANCHORS.read_text())["runs"] if r["slice"] == name and r.get("seed", 42) == 42]
    return max(runs, key=lambda r: r["chosen_on"])["score"]


def table(slices: list[str], trials: int) -> str:
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    lines = ["| slice | grid's best | stellartune tune: best (gap), s | Trainer search: best (gap), s | time ratio |"
             " pruned (st / Trainer) | stellartune defaults trial |", "|---|---|---|---|---|---|---|"]
    for name in slices:
        anchor, ours, theirs = grid_best(name), saved.get(f"stellartune|{name}|{trials}"), saved.get(f"trainer|{name}|{trials}")
        cell = lambda r: f"{r['best']:.4f} ({r['best'] - anchor:+.4f}), {r['seconds']:.0f}" if r else "-"
        ratio = f"{ours['seconds'] / theirs['seconds']:.2f}x" if ours and theirs else "-"
        lines.append(f"| {name} | {anchor:.4f} | {cell(ours)} | {cell(theirs)} | {ratio} | "
                     f"{ours['pruned'] if ours else '-'} / {theirs['pruned'] if theirs else '-'} | "
                     f"{ours['defaults']:.4f} |" if ours and ours.get("defaults") is not None else
                     f"| {name} | {anchor:.4f} | {cell(ours)} | {cell(theirs)} | {ratio} | - | - |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", nargs="+", default=["sst2", "stsb", "banking77"], choices=sorted(SLICES))
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=list(SIDES))
    parser.add_argument("--trials", type=int, default=TRIALS, help=f"Trials a search (default: {TRIALS}).")
    parser.add_argument("--table", action="store_true", help="Print the saved results only.")
    parser.add_argument("--memory", action="store_true", help="Resident memory over a 30-trial search, only.")
    args = parser.parse_args()
    if args.memory:
        return memory_over_a_long_search()
    if not args.table:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(len(args.sides), mp_context=context) as pool:
            for future in [pool.submit(run_side, side, args.slices, args.trials) for side in args.sides]:
                future.result()
    print(f"{args.trials} trials a search, {', '.join(SCORES[:3])} on the evaluation file\n"
          + table(args.slices, args.trials))


if __name__ == "__main__":
    main()
