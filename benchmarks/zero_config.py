"""stellartune with no flags on real slices of the shared data, against the Hugging Face Trainer's
learning-rate x batch grid on the same slices (issue 15).

    python benchmarks/zero_config.py --anchors             # the Trainer over the grid, once (hours)
    python benchmarks/zero_config.py                       # every slice, 3 seeds, against the saved grid
    python benchmarks/zero_config.py --slices sst2 conll --seeds 42

Each slice is trained with `stellartune.fit` and only the flags the slice names (`--epochs 1`, the
task's `--max-length`), so the `auto` settings decide the rest. `--anchors` trains the Trainer as its
example scripts do (trainer_recipes.py) at lr 2e-5/5e-5/1e-4/2e-4 x batch 8/16/32, one seed, same epochs,
and saves each run to zero_config_anchors.json as it ends (an interrupted run continues). Without it,
the stellartune runs are printed beside the saved anchors: the Trainer's own defaults (lr 5e-5, batch 8)
and the grid's best, chosen on the dev file (CoNLL's valid.txt; elsewhere the slice's evaluation file,
which is a dev file except BANKING77's and SMS spam's held-out parts), with the verdict: within 0.5
points of the best, in no more wall time than the Trainer's default run. `--trainer-settings` also runs
stellartune's own loop at the Trainer's default settings. `--jobs 2 --threads 1` runs two at a time.

Not here yet: issue 15's --full mode (full SST-2 and CoNLL, the SQuAD article split, AG News).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import multiprocessing
import random
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

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
# what the Trainer recipe for each slice is (trainer_recipes.py), and where the grid's best is chosen when
# the slice is scored on a test file that has a dev file beside it
PROBLEMS = {"sst2": "classification", "conll": "ner", "squad": "qa", "banking77": "classification",
            "stsb": "regression", "mrpc": "classification", "goemotions": "multi-label", "sms_spam": "classification"}
CHOSEN_ON = {"conll": DATA / "conll2003" / "valid.txt"}
SCORES = ("accuracy", "f1", "pearson", "micro_f1")  # the first a run reports is its score
GRID = [(lr, batch) for lr in (2e-5, 5e-5, 1e-4, 2e-4) for batch in (8, 16, 32)]
TRAINER_DEFAULTS = (5e-5, 8)
ANCHORS = Path(__file__).with_name("zero_config_anchors.json")


def run(train: Path, evaluation: Path, settings: dict, seed: int, output: Path) -> tuple[float, float]:
    import stellartune

    started = time.time()
    model = stellartune.fit(train=str(train), eval=str(evaluation), output=str(output), seed=seed, progress=False,
                            **settings)
    return next(model.metrics[k] for k in SCORES if k in model.metrics), time.time() - started


def run_trainer(name: str, train: Path, evaluation: Path, flags: dict, lr: float, batch: int, folder: Path) -> dict:
    """One Trainer run of the grid: its score on the slice's evaluation file (and on the file the best is
    chosen on), and its wall time from loading the model to the evaluation file's score (scoring the file
    the best is chosen on is left out: a Trainer run would not need it)."""
    from trainer_recipes import question_answering, sequence_classification, token_classification

    from stellartune.models import resolve_model

    started = time.time()
    files = {"evaluation": evaluation, **({"chosen on": CHOSEN_ON[name]} if name in CHOSEN_ON else {})}
    settings = {"lr": lr, "batch_size": batch, "epochs": flags.get("epochs", 3), "seed": 42}
    path, problem = resolve_model("minilm"), PROBLEMS[name]
    if problem == "qa":
        max_length = flags["max_length"]
        result = question_answering(path, train, files, folder, max_length=max_length, doc_stride=max_length // 3,
                                    **settings)
    elif problem == "ner":
        result = token_classification(path, train, files, folder, **settings)
    else:
        result = sequence_classification(path, problem, train, files, folder, **settings)
    return {"slice": name, "lr": lr, "batch_size": batch, "epochs": settings["epochs"],
            "score": result["scores"]["evaluation"],
            "chosen_on": result["scores"].get("chosen on", result["scores"]["evaluation"]),
            "train_seconds": round(result["seconds"], 1),
            "seconds": round(time.time() - started - result["score_seconds"].get("chosen on", 0.0), 1),
            "threads": torch.get_num_threads()}


def saved_anchors() -> list[dict]:
    return json.loads(ANCHORS.read_text())["runs"] if ANCHORS.exists() else []


def run_anchors(names: list[str], grid: list[tuple[float, int]], folder: Path) -> None:
    """The Trainer over the grid on each slice; every run is saved as it ends, and runs already saved are
    skipped, so an interrupted --anchors continues where it stopped."""
    runs = saved_anchors()
    for name in names:
        train, evaluation, flags = SLICES[name](folder)
        for lr, batch in grid:
            if any(r["slice"] == name and r["lr"] == lr and r["batch_size"] == batch for r in runs):
                continue
            runs.append(run_trainer(name, train, evaluation, flags, lr, batch, folder / f"trainer-{name}"))
            print(json.dumps(runs[-1]), flush=True)
            saved = json.loads(ANCHORS.read_text()) if ANCHORS.exists() else {}  # keeps its notes
            command = f"python benchmarks/zero_config.py --anchors --threads {torch.get_num_threads()}"
            ANCHORS.write_text(json.dumps({**saved, "command": command, "model": "minilm", "seed": 42, "runs": runs},
                                          indent=1) + "\n")


def anchor_cells(name: str, score: float, seconds: float, runs: list[dict]) -> str:
    """The Trainer's default run and the grid's best (chosen on dev) on one slice, and the verdict: within 0.5
    points of the best, in no more wall time than the default run (timed on as many threads)."""
    mine = [r for r in runs if r["slice"] == name]
    if not mine:
        return "| | | |"
    default = next((r for r in mine if (r["lr"], r["batch_size"]) == TRAINER_DEFAULTS), None)
    best = max(mine, key=lambda r: r["chosen_on"])
    grid = f" ({len(mine)} of {len(GRID)} grid points)" if len(mine) < len(GRID) else ""
    gap = 100 * (score - best["score"])
    verdict = f"{gap:+.1f} points" + (", within 0.5" if gap >= -0.5 else ", short of it")
    if default and default["threads"] != torch.get_num_threads():
        verdict += f"; time not compared (the Trainer ran on {default['threads']} threads)"
    elif default:
        verdict += ", no slower" if seconds <= default["seconds"] else f", {seconds / default['seconds']:.2f}x the time"
    return (f"| {default['score']:.4f} ({default['seconds']:.0f} s) " if default else "| ") + (
        f"| {best['score']:.4f} at lr {best['lr']:g} b{best['batch_size']}{grid} | {verdict} |")


def use_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    logging.getLogger("stellartune").setLevel(logging.WARNING)


def seed_runs(names: list[str], variants: dict, seeds: list[int], jobs: int, threads: int, folder: Path) -> list:
    """Each slice x variant over the seeds, `jobs` runs at a time (separate processes of `threads` threads:
    small batches use two cores better as two runs than as one): (slice, variant, flags, scores, seconds)."""
    slices = {name: SLICES[name](folder) for name in names}
    results = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=use_threads, initargs=(threads,)) as pool:
        futures = {pool.submit(run, train, evaluation, {**flags, **settings}, seed, folder / f"{name}-{variant}-{seed}"):
                   (name, variant) for name, (train, evaluation, flags) in slices.items()
                   for variant, settings in variants.items() for seed in seeds}
        for future in as_completed(futures):
            score, seconds = future.result()
            results.setdefault(futures[future], []).append((score, seconds))
            print(f"{' '.join(futures[future]):30} score {score:.4f} in {seconds:.0f} s", flush=True)
    return [(name, variant, json.dumps(slices[name][2]), [r[0] for r in results[name, variant]],
             [r[1] for r in results[name, variant]]) for name in names for variant in variants]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", nargs="+", choices=list(SLICES), default=list(SLICES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--jobs", type=int, default=1, help="stellartune runs at a time (default 1)")
    parser.add_argument("--threads", type=int,
                        help="Torch threads of each run, on both sides (default: torch's, shared by the jobs)")
    parser.add_argument("--trainer-settings", action="store_true", help="Also train at the Trainer's defaults")
    parser.add_argument("--anchors", action="store_true",
                        help=f"Run the Trainer over the lr x batch grid and save it to {ANCHORS.name} (hours)")
    parser.add_argument("--lrs", nargs="+", type=float, default=sorted({lr for lr, _ in GRID}),
                        help="With --anchors: only these learning rates of the grid")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=sorted({b for _, b in GRID}),
                        help="With --anchors: only these batch sizes of the grid")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"needs the shared datasets in {DATA}")
    threads = args.threads or max(1, torch.get_num_threads() // args.jobs)
    use_threads(threads)
    variants = {"no flags": {}, **({"Trainer's settings": TRAINER_SETTINGS} if args.trainer_settings else {})}
    with tempfile.TemporaryDirectory() as scratch:
        if args.anchors:
            grid = [p for p in GRID if p[0] in args.lrs and p[1] in args.batch_sizes]
            return run_anchors(args.slices, grid, Path(scratch))
        rows = seed_runs(args.slices, variants, args.seeds, args.jobs, threads, Path(scratch))
    runs = saved_anchors()
    print(f"\n{threads} thread(s) a run, {args.jobs} run(s) at a time")
    print("| slice | run | flags | score | spread (sd) | wall s | Trainer defaults (wall) | Trainer best of grid "
          "| against the best |\n|---|---|---|---|---|---|---|---|---|")
    for name, variant, flags, scores, seconds in rows:
        spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
        print(f"| {name} | {variant} | `{flags}` | {statistics.mean(scores):.4f} | {spread:.4f} | "
              f"{statistics.mean(seconds):.0f} " + anchor_cells(name, statistics.mean(scores),
                                                                statistics.mean(seconds), runs))


if __name__ == "__main__":
    main()
