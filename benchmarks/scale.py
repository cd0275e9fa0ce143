"""Data larger than memory: stellartune against `datasets` + the Trainer on one large file, in one run.

    .venv/bin/python benchmarks/scale.py --rows 1000000            # about 10 minutes on 2 cores
    .venv/bin/python benchmarks/scale.py --rows 10000000 --rows 1000000
    .venv/bin/python benchmarks/scale.py --documents 200000 --documents 1000000   # pretraining corpora

--rows: the CSV (column "sentence", "label") is SST-2's training sentences repeated to that many rows. Each
side trains `minilm` for --steps steps at batch 32 (max length 128) and then evaluates on a held-out split of
--held-out of the rows, each in its own process, one after the other:
- `stellartune`: `stellartune train` with its defaults (the file read a chunk at a time into its store,
  tokenized into Arrow, memory-mapped; length-grouped batches);
- `datasets + Trainer`: `load_dataset("csv")` (Arrow, memory-mapped), `train_test_split`, `map` with the
  fast tokenizer batched, `Trainer` with `DataCollatorWithPadding` (run_glue.py's dynamic padding).

--documents: continued MLM pretraining on a .txt corpus, one document per line: IMDB's 50,000 labelled
reviews repeated to that many lines (about 1.3 KB each). The same steps, batch and held-out share:
- `stellartune`: `stellartune pretrain` with its defaults (packed blocks of 128 tokens, stored in Arrow);
- `datasets + Trainer`: run_mlm.py's recipe: `load_dataset("text")`, `map` with the fast tokenizer batched,
  `group_texts` into blocks of 128, `DataCollatorForLanguageModeling`, `AutoModelForMaskedLM`.

Each side runs twice on an empty cache folder of its own: a cold run, then a warm one that finds what the
cold run cached (stellartune's store; `datasets`' cache of the file and of `map`).

Measured per run, by this script: peak resident memory of the process (wait4's ru_maxrss), seconds from
the process start to the end of its first optimizer step, and to the end of the run. Prints a table and
the ratios; writes FOLDER/summary.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BIN = Path(sys.executable).parent
BATCH, MAX_LENGTH = 32, 128

TRAINER_START = """
import sys
from itertools import chain
from datasets import load_dataset
from transformers import (AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer,
                          DataCollatorForLanguageModeling, DataCollatorWithPadding, Trainer, TrainerCallback,
                          TrainingArguments)
from stellartune.models.registry import minilm_path

data, cache, output, steps, held_out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])

class FirstStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            print("FIRST-STEP", flush=True)

model_path = minilm_path()
tokenizer = AutoTokenizer.from_pretrained(model_path)
"""
TRAINER_CLASSIFIER = """
dataset = load_dataset("csv", data_files={"train": data}, cache_dir=cache)["train"]
split = dataset.train_test_split(test_size=held_out, seed=42)
tokenize = lambda batch: tokenizer(batch["sentence"], truncation=True, max_length=%d)
split = split.map(tokenize, batched=True, remove_columns=["sentence"])
model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
collator = DataCollatorWithPadding(tokenizer)
""" % MAX_LENGTH
TRAINER_MLM = """
dataset = load_dataset("text", data_files={"train": data}, cache_dir=cache)["train"]
split = dataset.train_test_split(test_size=held_out, seed=42)
tokenize = lambda batch: tokenizer(batch["text"], return_special_tokens_mask=True)
split = split.map(tokenize, batched=True, remove_columns=["text"])

def group_texts(examples):  # run_mlm.py's
    joined = {k: list(chain(*examples[k])) for k in examples.keys()}
    total = len(joined["input_ids"]) // %d * %d
    return {k: [t[i : i + %d] for i in range(0, total, %d)] for k, t in joined.items()}

split = split.map(group_texts, batched=True)
model = AutoModelForMaskedLM.from_pretrained(model_path)
collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
""" % ((MAX_LENGTH,) * 4)
TRAINER_END = """
args = TrainingArguments(output, max_steps=steps, per_device_train_batch_size=%d, per_device_eval_batch_size=64,
                         learning_rate=1e-4, logging_steps=50, save_strategy="no", eval_strategy="no",
                         report_to=[], disable_tqdm=True)
trainer = Trainer(model, args, train_dataset=split["train"], data_collator=collator, callbacks=[FirstStep()])
trainer.train()
print("EVAL", trainer.evaluate(split["test"]), flush=True)
""" % BATCH


@dataclass
class Workload:
    """What both sides train on one generated file: the stellartune command, the Trainer's recipe, the score."""

    name: str
    write: Callable[[Path, int], None]
    suffix: str
    command: str  # stellartune's
    recipe: str  # the Trainer side's data and model
    score: str  # of stellartune's metrics.json


def write_corpus(path: Path, documents: int) -> None:
    """IMDB's labelled reviews (line breaks as spaces), one per line, repeated to `documents` lines."""
    if path.exists():
        return
    reviews = []
    with tarfile.open(SHARED / "imdb" / "aclImdb_labeled.tar.gz") as archive:
        for member in archive:
            parts = member.name.split("/")  # aclImdb/train/pos/123_9.txt
            if len(parts) == 4 and parts[2] in ("pos", "neg") and member.name.endswith(".txt"):
                text = archive.extractfile(member).read().decode("utf-8")
                reviews.append(" ".join(text.replace("<br />", " ").split()))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.writelines(reviews[i % len(reviews)] + "\n" for i in range(documents))
    tmp.replace(path)


def write_csv(path: Path, rows: int) -> None:
    """SST-2's training sentences and labels, repeated to `rows` rows."""
    if path.exists():
        return
    with open(SHARED / "sst2" / "train.tsv", encoding="utf-8") as handle:
        source = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "label"])
        for i in range(rows):
            sentence, label = source[i % len(source)]
            writer.writerow([sentence.strip(), label])
    tmp.replace(path)


class Watched:
    """A child process: its start, the moment a condition first holds (`first_step`), its end, peak memory."""

    def __init__(self, command: list[str], env: dict, log: Path, first_step):
        self.started = time.perf_counter()
        self.log = open(log, "w")
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.first_step_at = None
        threading.Thread(target=self.read, args=(first_step,), daemon=True).start()

    def read(self, first_step) -> None:
        for line in self.process.stdout:
            self.log.write(line)
            if self.first_step_at is None and first_step(line):
                self.first_step_at = time.perf_counter() - self.started

    def wait(self) -> dict:
        _, status, usage = os.wait4(self.process.pid, 0)
        ended = time.perf_counter() - self.started
        time.sleep(0.5)  # the reader thread drains the pipe
        self.log.close()
        if status != 0:
            raise SystemExit(f"{self.process.args[:3]} failed (status {status}); see {self.log.name}")
        return {"first_step_s": self.first_step_at, "total_s": ended, "peak_rss_gb": usage.ru_maxrss / 1e6}


def stellartune_run(work: Workload, data: Path, folder: Path, name: str, steps: int, held_out: float) -> dict:
    env = dict(os.environ, STELLARTUNE_CACHE=str(folder / "stellartune-cache"))
    command = [str(BIN / "stellartune"), work.command, "--train", str(data), "--output", str(folder / f"run-{name}"),
               "--max-steps", str(steps), "--eval-steps", str(steps), "--eval-split", str(held_out), "--log-steps", "1",
               "--batch-size", str(BATCH), "--lr", "1e-4", "--no-progress"]
    run_log = folder / f"run-{name}" / "log.jsonl"
    watched = Watched(command, env, folder / f"{name}.log", lambda line: False)
    # the run's first log record (--log-steps 1) is written at the end of step 1
    poller = threading.Thread(target=poll, args=(watched, run_log), daemon=True)
    poller.start()
    result = watched.wait()
    log = (folder / f"{name}.log").read_text()
    result["reused"] = "reused the token ids" in log
    result[work.score] = json.loads((folder / f"run-{name}" / "metrics.json").read_text())[work.score]
    return result


def poll(watched: Watched, run_log: Path) -> None:
    while watched.first_step_at is None and watched.process.poll() is None:
        if run_log.exists() and '"step": 1,' in run_log.read_text()[:400]:
            watched.first_step_at = time.perf_counter() - watched.started
        time.sleep(0.05)


def trainer_run(work: Workload, data: Path, folder: Path, name: str, steps: int, held_out: float) -> dict:
    script = folder / "trainer_side.py"
    script.write_text(TRAINER_START + work.recipe + TRAINER_END)
    command = [sys.executable, str(script), str(data), str(folder / "datasets-cache"), str(folder / f"run-{name}"),
               str(steps), str(held_out)]
    watched = Watched(command, dict(os.environ, HF_DATASETS_OFFLINE="1"), folder / f"{name}.log",
                      lambda line: line.startswith("FIRST-STEP"))
    result = watched.wait()
    log = (folder / f"{name}.log").read_text()
    result["eval_loss"] = json.loads(log.split("EVAL ", 1)[1].splitlines()[0].replace("'", '"'))["eval_loss"]
    return result


WORKLOADS = {
    "rows": Workload("rows", write_csv, "csv", "train", TRAINER_CLASSIFIER, "accuracy"),
    "documents": Workload("documents", write_corpus, "txt", "pretrain", TRAINER_MLM, "mlm_loss"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", default=[],
                        help="rows of the generated CSV, for fine-tuning (repeatable)")
    parser.add_argument("--documents", type=int, action="append", default=[],
                        help="documents of the generated corpus, for pretraining (repeatable)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--held-out", type=float, default=0.001, help="share of the rows held out for evaluation")
    parser.add_argument("--folder", default="runs/bench-scale")
    args = parser.parse_args()
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    summary = {}
    sizes = [(WORKLOADS["rows"], n) for n in args.rows] + [(WORKLOADS["documents"], n) for n in args.documents]
    for work, size in sizes or [(WORKLOADS["rows"], 1_000_000)]:
        data = folder / f"{'sst2' if work.name == 'rows' else 'imdb'}-{size}.{work.suffix}"
        work.write(data, size)
        runs = Path(tempfile.mkdtemp(prefix=f"scale-{size}-", dir=folder))
        results = {}
        for side, run in (("stellartune", stellartune_run), ("datasets + Trainer", trainer_run)):
            for attempt in ("cold", "warm"):
                name = f"{side.split()[0]}-{attempt}"
                print(f"{size:,} {work.name}: {side}, {attempt} cache ...", flush=True)
                results[f"{side}, {attempt}"] = run(work, data, runs, name, args.steps, args.held_out)
                print("   ", results[f"{side}, {attempt}"], flush=True)
        summary[f"{size} {work.name}"] = results
        show(f"{size:,} {work.name}", results)
        for cache in ("stellartune-cache", "datasets-cache"):  # this script's own folders, gigabytes at 10M rows
            shutil.rmtree(runs / cache, ignore_errors=True)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))


def show(size: str, results: dict) -> None:
    print(f"\n{size}, {BATCH} per batch; seconds from process start")
    print(f"{'run':34} {'first step':>11} {'whole run':>10} {'peak RSS':>9}")
    for name, r in results.items():
        print(f"{name:34} {r['first_step_s']:>10.1f}s {r['total_s']:>9.1f}s {r['peak_rss_gb']:>7.2f}GB")
    for attempt in ("cold", "warm"):
        ours, theirs = results[f"stellartune, {attempt}"], results[f"datasets + Trainer, {attempt}"]
        print(f"{attempt}: time to first step x{theirs['first_step_s'] / ours['first_step_s']:.2f} faster, "
              f"whole run x{theirs['total_s'] / ours['total_s']:.2f}, peak memory x{ours['peak_rss_gb'] / theirs['peak_rss_gb']:.2f} "
              f"of the Trainer's (stellartune reused its tokens: {ours['reused']})")


if __name__ == "__main__":
    main()
