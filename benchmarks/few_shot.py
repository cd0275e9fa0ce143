"""stellartune with no flags against SetFit with its defaults on few labelled examples (issue 31): the same
body (`minilm`), the same samples of 8, 16 or 64 examples per class, the same test rows.

    python benchmarks/few_shot.py                     # short mode: stellartune on every set, 8/16/64 per class, seeds 0 and 1
    python3 -m venv .venv-setfit && .venv-setfit/bin/pip install -c constraints.txt torch==2.13.0 setfit==1.2.0
    python benchmarks/few_shot.py --sides setfit      # SetFit's runs not yet saved (hours: see below)
    python benchmarks/few_shot.py --sets sst2 --sizes 8 --seeds 0 1 2 3 4 --sides stellartune setfit
    python benchmarks/few_shot.py --sides frozen      # a reference: the checkpoint's own embeddings, no training

The short mode (the first line, about 30 minutes on 2 cores) trains stellartune on every set, size and seed, and
scores 1,000 seeded test rows (fewer seeds and a capped test set than the issue's 5 and all rows). SetFit's side
is read from its saved runs: they take far longer (SST-2 at 64 per class: 600-750 s a run; BANKING77 at 8 per
class: over 23 minutes, as its pairs grow with the square of the data), so they are measured once with
`--sides setfit`, each run saved as it ends (an interrupted run continues), and shown from few_shot.json after.
stellartune's runs are measured again on every call.

SetFit is a benchmark-only dependency with its own pins (sentence-transformers, evaluate), so it runs in its
own environment, `.venv-setfit` (second line above; `--setfit-python` names another interpreter), and this
script runs there for each SetFit run, so both sides draw their samples with the same code. Each side gets the
sample seed as its training seed (`--seed` / `TrainingArguments(seed=)`) and nothing else. Sets: SST-2 train ->
dev; AG News, a seeded 80/20 split of its test file; BANKING77 train -> test; SMS spam, a seeded 80/20 split;
MRPC train -> dev (sentence pairs; SetFit takes one text, so it gets the two joined by " [SEP] "). A sample
takes `size` examples of every class (all of a class that has fewer). The table shows each side's mean, worst
seed and wall time per run. `--sides frozen` measures what the body gives with no encoder training at all: its
mean-pooled, normalised embeddings with scikit-learn's logistic regression on the sample (SetFit's head
without its contrastive stage); its runs are listed under the table. Runs under `stellartune-before` are
stellartune's before the few-shot stage (commit f764bf9), under `stellartune-stage` the stage where the
2,000-example limit now sends a run to the loop (BANKING77 at 64 per class); both kept for the record.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).with_name("few_shot.json")
Row = tuple[str, str | None, str]  # text, second text (pairs) or None, label


def tsv_rows(path: Path, text: int, label: int, pair: int | None = None) -> list[Row]:
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    return [(r[text].strip(), r[pair].strip() if pair is not None else None, r[label].strip()) for r in rows]


def seeded_split(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    rows = list(rows)
    random.Random(0).shuffle(rows)
    cut = int(0.8 * len(rows))
    return rows[:cut], rows[cut:]


def sst2() -> tuple[list[Row], list[Row]]:
    return tsv_rows(DATA / "sst2" / "train.tsv", 0, 1), tsv_rows(DATA / "sst2" / "dev.tsv", 0, 1)


def ag_news() -> tuple[list[Row], list[Row]]:
    names = (DATA / "ag_news" / "classes.txt").read_text().split()
    with open(DATA / "ag_news" / "test.csv", newline="", encoding="utf-8") as handle:
        rows = [(f"{title} {description}", None, names[int(label) - 1]) for label, title, description in csv.reader(handle)]
    return seeded_split(rows)


def banking77() -> tuple[list[Row], list[Row]]:
    def read(name: str) -> list[Row]:
        with open(DATA / "banking77" / name, newline="", encoding="utf-8") as handle:
            return [(row["text"], None, row["category"]) for row in csv.DictReader(handle)]
    return read("train.csv"), read("test.csv")


def sms_spam() -> tuple[list[Row], list[Row]]:
    lines = (DATA / "sms_spam" / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()
    return seeded_split([(text, None, label) for label, text in (line.split("\t", 1) for line in lines)])


def mrpc() -> tuple[list[Row], list[Row]]:
    return tsv_rows(DATA / "mrpc" / "train.tsv", 3, 0, 4), tsv_rows(DATA / "mrpc" / "dev.tsv", 3, 0, 4)


SETS = {"sst2": sst2, "ag_news": ag_news, "banking77": banking77, "sms_spam": sms_spam, "mrpc": mrpc}


def sample(rows: list[Row], size: int, seed: int) -> list[Row]:
    """`size` rows of every label (all of a label with fewer), drawn with `seed`, in a shuffled order."""
    by_label: dict[str, list[Row]] = {}
    for row in rows:
        by_label.setdefault(row[2], []).append(row)
    rng = random.Random(seed)
    chosen = [row for label in sorted(by_label) for row in rng.sample(by_label[label], min(size, len(by_label[label])))]
    rng.shuffle(chosen)
    return chosen


def test_rows(rows: list[Row], limit: int | None) -> list[Row]:
    if limit is None or len(rows) <= limit:
        return rows
    return random.Random(1).sample(rows, limit)


def write_csv(path: Path, rows: list[Row]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        pairs = rows[0][1] is not None
        writer.writerow(["sentence1", "sentence2", "label"] if pairs else ["text", "label"])
        writer.writerows(rows if pairs else [(r[0], r[2]) for r in rows])
    return path


def run_stellartune(train: list[Row], test: list[Row], seed: int, folder: Path) -> dict:
    import stellartune

    started = time.time()
    model = stellartune.fit(train=str(write_csv(folder / "train.csv", train)), output=str(folder / "run"), seed=seed,
                            progress=False)
    metrics = model.evaluate(str(write_csv(folder / "test.csv", test)))
    return {"accuracy": metrics["accuracy"], "seconds": time.time() - started}


def run_frozen(train: list[Row], test: list[Row], seed: int) -> dict:
    """Logistic regression on the frozen body's mean-pooled, normalised embeddings."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModel, AutoTokenizer

    started = time.time()
    tokenizer, body = AutoTokenizer.from_pretrained(minilm_folder()), AutoModel.from_pretrained(minilm_folder()).eval()

    def embed(rows: list[Row]) -> np.ndarray:
        vectors = []
        for start in range(0, len(rows), 64):
            part = rows[start : start + 64]
            batch = tokenizer([r[0] for r in part], [r[1] for r in part] if part[0][1] is not None else None,
                              truncation=True, max_length=128, padding=True, return_tensors="pt")
            with torch.inference_mode():
                hidden = body(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            vectors.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
        return torch.cat(vectors).numpy()

    head = LogisticRegression(max_iter=1000, random_state=seed).fit(embed(train), [r[2] for r in train])
    predicted = head.predict(embed(test))
    accuracy = float(np.mean([p == r[2] for p, r in zip(predicted, test)]))
    return {"accuracy": accuracy, "seconds": time.time() - started}


def run_setfit(train: list[Row], test: list[Row], seed: int, body: str) -> dict:
    """In the SetFit environment: SetFitModel.from_pretrained(body), TrainingArguments(seed=seed), nothing else."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    text = lambda row: row[0] if row[1] is None else f"{row[0]} [SEP] {row[1]}"
    started = time.time()
    model = SetFitModel.from_pretrained(body)
    data = Dataset.from_dict({"text": [text(r) for r in train], "label": [r[2] for r in train]})
    Trainer(model=model, args=TrainingArguments(seed=seed), train_dataset=data).train()
    predicted = model.predict([text(r) for r in test])
    accuracy = sum(str(p) == r[2] for p, r in zip(predicted, test)) / len(test)
    return {"accuracy": accuracy, "seconds": time.time() - started}


def one_run(side: str, name: str, size: int, seed: int, limit: int | None, setfit_python: str | None) -> dict:
    pool, test = SETS[name]()
    train, test = sample(pool, size, seed), test_rows(test, limit)
    if side == "stellartune":
        with tempfile.TemporaryDirectory() as folder:
            return run_stellartune(train, test, seed, Path(folder))
    if side == "frozen":
        return run_frozen(train, test, seed)
    job = json.dumps({"set": name, "size": size, "seed": seed, "limit": limit, "body": minilm_folder()})
    with tempfile.TemporaryDirectory() as folder:  # SetFit's Trainer writes checkpoints/ where it runs
        result = subprocess.run([setfit_python, str(Path(__file__).resolve()), "--setfit-run", job], cwd=folder,
                                capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if result.returncode:
        raise SystemExit(f"SetFit run failed ({name}, {size} per class, seed {seed}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def minilm_folder() -> str:
    from stellartune.models import resolve_model

    return resolve_model("minilm")


def key(side: str, name: str, size: int, seed: int, limit: int | None) -> str:
    return f"{side}|{name}|{size}|{seed}|{limit}"


def table(results: dict, names: list[str], sizes: list[int], seeds: list[int], limit: int | None) -> str:
    lines = ["| set | per class | stellartune: mean (worst) | s a run | SetFit 1.2: mean (worst) | s a run | "
             "mean against SetFit | worst against SetFit's worst |", "|---|---|---|---|---|---|---|---|"]
    for name in names:
        for size in sizes:
            cells, found = [], {}
            for side in ("stellartune", "setfit"):
                runs = [results[k] for s in seeds if (k := key(side, name, size, s, limit)) in results]
                found[side] = runs
                if runs:
                    scores = [r["accuracy"] for r in runs]
                    cells += [f"{statistics.mean(scores):.3f} ({min(scores):.3f}), {len(runs)} seeds",
                              f"{statistics.mean(r['seconds'] for r in runs):.0f}"]
                else:
                    cells += ["-", "-"]
            if found["stellartune"] and found["setfit"]:
                mine = [r["accuracy"] for r in found["stellartune"]]
                theirs = [r["accuracy"] for r in found["setfit"]]
                cells += [f"{100 * (statistics.mean(mine) - statistics.mean(theirs)):+.1f} points",
                          f"{100 * (min(mine) - min(theirs)):+.1f} points"]
            else:
                cells += ["-", "-"]
            lines.append(f"| {name} | {size} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[8, 16, 64])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--test-rows", type=int, default=1000, help="test rows scored, a seeded sample (0: all)")
    parser.add_argument("--sides", nargs="+", default=["stellartune"], choices=("stellartune", "setfit", "frozen"),
                        help="the sides to run (SetFit's and the frozen reference's saved runs are shown either way)")
    parser.add_argument("--setfit-python", default=str(Path(__file__).resolve().parents[1] / ".venv-setfit" / "bin" / "python"),
                        help="the interpreter of an environment with setfit==1.2.0 (default: .venv-setfit's)")
    parser.add_argument("--setfit-run", help=argparse.SUPPRESS)  # one SetFit run, in the SetFit environment
    args = parser.parse_args()
    if args.setfit_run:
        job = json.loads(args.setfit_run)
        pool, test = SETS[job["set"]]()
        print(json.dumps(run_setfit(sample(pool, job["size"], job["seed"]), test_rows(test, job["limit"]),
                                    job["seed"], job["body"])))
        return
    limit = args.test_rows or None
    if "setfit" in args.sides and not Path(args.setfit_python).exists():
        parser.error(f"{args.setfit_python}: no such interpreter; the SetFit side needs an environment with "
                     "setfit==1.2.0 (see the second command in this script's docstring)")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in args.sets:
        for size in args.sizes:
            for seed in args.seeds:
                for side in args.sides:
                    saved = key(side, name, size, seed, limit)
                    if saved in results and side != "stellartune":  # stellartune's: measured again every time
                        continue
                    result = one_run(side, name, size, seed, limit, args.setfit_python)
                    results[saved] = result
                    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True))
                    print(f"{side} {name} {size} per class, seed {seed}: accuracy {result['accuracy']:.4f} in "
                          f"{result['seconds']:.0f} s", flush=True)
    print(table(results, args.sets, args.sizes, args.seeds, limit))
    frozen = [(k.split("|")[1:4], r["accuracy"]) for k, r in sorted(results.items()) if k.startswith("frozen|")]
    if frozen:
        print("frozen embeddings + logistic regression: " + "; ".join(
            f"{name} {size} per class seed {seed} {accuracy:.3f}" for (name, size, seed), accuracy in frozen))


if __name__ == "__main__":
    main()
