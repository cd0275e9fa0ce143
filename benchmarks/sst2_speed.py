"""Training and prediction speed on SST-2: stellartune against the Hugging Face Trainer, in one run.

    python benchmarks/sst2_speed.py --short    # under 5 minutes: 2,000 sentences, 400 predictions
    python benchmarks/sst2_speed.py            # one full epoch each, dev accuracy, 2,000 IMDB reviews
    python benchmarks/sst2_speed.py --predict-only   # prediction again, with the model a full run trained

Training, `minilm` on SST-2 train sentences, one measurement per process (so each peak resident
memory is its own), in alternating order over --rounds:
- `trainer run_glue`: the Trainer as run_glue.py runs it by default: every sentence padded to 128
  tokens, batch 32, fp32, random order. Its cost per example does not depend on the sentences, so
  it trains on the first --glue-examples sentences only (a full epoch takes hours here) and gets
  no accuracy.
- `trainer best`: dynamic padding, length-grouped batches, bf16 autocast where the measured bf16
  matmul peak is over 1.5x the fp32 one (the fastest Trainer setting found, issue 6), batch 32.
- `stellartune`: `stellartune.fit` at the Trainer's settings (batch 32, `--trainer-lr`, the architecture's own
  head), its defaults otherwise.
Examples/s and real (non-padding) tokens/s count the training loop only; model FLOP utilisation
(MFU) is 6 x parameters (without the embedding tables) + attention per real token, against a
matmul peak measured in the same run at the precision the run used.

Prediction, with the model stellartune trained: `transformers.pipeline("text-classification")` at
its default batch size against `FineTunedModel.predict` at its defaults (batch 64, the run's
precision: bf16 autocast where the CPU has bf16 units), both truncating at 128 tokens, on SST-2
dev and on 2,000 IMDB test reviews (the first in the archive); labels compared one by one.

Prints the tables and the ratios; writes runs/bench-speed/summary.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MAX_LENGTH, BATCH = 128, 32
TRAINERS = ("trainer run_glue", "trainer best", "stellartune")


# ---------------------------------------------------------------- data
def sst2(name: str, limit: int | None = None) -> tuple[list[str], list[int]]:
    with open(SHARED / "sst2" / name, encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:][:limit]
    return [r[0].strip() for r in rows], [int(r[1]) for r in rows]


def imdb_reviews(count: int) -> list[str]:
    texts = []
    with tarfile.open(SHARED / "imdb" / "aclImdb_labeled.tar.gz") as archive:
        for member in archive:
            if member.name.startswith("aclImdb/test/") and member.name.endswith(".txt") and len(texts) < count:
                text = archive.extractfile(member).read().decode("utf-8").replace("<br />", " ")
                texts.append(" ".join(text.split()))
    return texts


def write_tsv(path: Path, texts: list[str], labels: list[int]) -> str:
    path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)), encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------- machine and model
def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a square matmul: the ceiling the training runs are measured against."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def training_flops_per_token(model, mean_length: float) -> float:
    """6N for the dense layers (forward + backward) plus attention scores and mixing, per real token."""
    config = model.config
    embeddings = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    dense = sum(p.numel() for p in model.parameters()) - embeddings
    return 6 * dense + 12 * config.num_hidden_layers * config.hidden_size * mean_length


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------- one measurement per process
def train_trainer(args, best: bool) -> dict:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    from stellartune.models import resolve_model

    path = resolve_model(args.model)
    texts, labels = sst2("train.tsv", None if best else args.glue_examples)
    texts, labels = texts[: args.train_examples], labels[: args.train_examples]
    tokenizer = AutoTokenizer.from_pretrained(path)
    padding = False if best else "max_length"  # run_glue.py's default: pad_to_max_length
    encoded = tokenizer(texts, truncation=True, max_length=MAX_LENGTH, padding=padding)
    features = [{"input_ids": encoded["input_ids"][i], "attention_mask": encoded["attention_mask"][i],
                 "token_type_ids": encoded["token_type_ids"][i], "labels": labels[i]} for i in range(len(texts))]
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    bf16 = best and args.bf16
    training = TrainingArguments(output_dir=str(Path(args.output) / "trainer"), per_device_train_batch_size=BATCH,
                                 learning_rate=args.trainer_lr, num_train_epochs=1, save_strategy="no",
                                 eval_strategy="no", logging_steps=100, report_to=[], seed=0, use_cpu=True, bf16=bf16,
                                 train_sampling_strategy="group_by_length" if best else "random")
    trainer = Trainer(model=model, args=training, train_dataset=features,
                      data_collator=DataCollatorWithPadding(tokenizer) if best else default_data_collator)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    result = {"examples": len(features), "train_seconds": seconds, "precision": "bf16" if bf16 else "fp32",
              "real_tokens": sum(map(sum, encoded["attention_mask"])), "model": model}
    if best:  # dev accuracy, predicted in input order (transformers 5 length-groups evaluation too)
        trainer.args.train_sampling_strategy = "random"
        dev_texts, dev_labels = sst2("dev.tsv")
        dev = tokenizer(dev_texts, truncation=True, max_length=MAX_LENGTH)
        dev_features = [{k: dev[k][i] for k in dev} for i in range(len(dev_texts))]
        predicted = trainer.predict(dev_features).predictions.argmax(-1)
        result["dev_accuracy"] = float((predicted == np.asarray(dev_labels)).mean())
    return result


def train_stellartune(args) -> dict:
    import stellartune
    from stellartune.models import load_tokenizer, resolve_model
    from stellartune.training.recipe import mixed_precision

    texts, labels = sst2("train.tsv")
    texts, labels = texts[: args.train_examples], labels[: args.train_examples]
    folder = Path(args.output)
    train = write_tsv(folder / "train.tsv", texts, labels)
    model = stellartune.fit(model=args.model, train=train, eval=str(SHARED / "sst2" / "dev.tsv"),
                            output=str(folder / "stellartune"), epochs=1, max_length=MAX_LENGTH, progress=False,
                            pooling="model", lr=args.trainer_lr, batch_size=BATCH)  # the Trainer's settings
    log = [json.loads(line) for line in (folder / "stellartune" / "log.jsonl").read_text().splitlines()]
    seconds = next(r["train_seconds"] for r in log if "epoch_end" in r)
    tokenizer = load_tokenizer(resolve_model(args.model))
    real_tokens = sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"])
    precision = {"no": "fp32"}.get(mixed_precision("auto"), "bf16")  # what fit's default precision picks here
    return {"examples": len(texts), "train_seconds": seconds, "real_tokens": real_tokens, "precision": precision,
            "dev_accuracy": model.metrics["accuracy"], "model": model.model}


def predict_pipeline(texts: list[str], model_folder: str) -> dict:
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(Path(model_folder) / "model"), device=-1)
    started = time.perf_counter()
    labels = [p["label"] for p in classify(texts, truncation=True, max_length=MAX_LENGTH)]
    return {"seconds": time.perf_counter() - started, "labels": labels}


def predict_stellartune(texts: list[str], model_folder: str) -> dict:
    import stellartune

    model = stellartune.load(model_folder)
    started = time.perf_counter()
    labels = [p["label"] for p in model.predict(texts)]
    return {"seconds": time.perf_counter() - started, "labels": labels}


def worker(args) -> None:
    """Runs one measurement and prints it as the last line of stdout."""
    if args.worker in TRAINERS:
        run = {"trainer run_glue": lambda: train_trainer(args, best=False),
               "trainer best": lambda: train_trainer(args, best=True),
               "stellartune": lambda: train_stellartune(args)}[args.worker]()
        mean_length = run["real_tokens"] / run["examples"]
        run["flops_per_token"] = training_flops_per_token(run.pop("model"), mean_length)
    else:
        texts = json.loads(Path(args.texts).read_text())
        predict = predict_pipeline if args.worker == "pipeline" else predict_stellartune
        run = predict(texts, args.model_folder)
    run["peak_memory_mb"] = peak_memory_mb()
    print(json.dumps(run))


def measure(args, name: str, extra: list[str] = ()) -> dict:
    command = [sys.executable, __file__, "--worker", name, "--model", args.model, "--output", args.output,
               "--glue-examples", str(args.glue_examples), "--trainer-lr", str(args.trainer_lr), *extra]
    if args.train_examples:
        command += ["--train-examples", str(args.train_examples)]
    if args.bf16:
        command.append("--bf16")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the run
def training_table(runs: dict, peaks: dict) -> list[dict]:
    rows = []
    for name, measured in runs.items():
        seconds = statistics.median(r["train_seconds"] for r in measured)
        first = measured[0]
        tokens_per_s = first["real_tokens"] / seconds
        rows.append({"trainer": name, "precision": first["precision"], "examples_per_s": first["examples"] / seconds,
                     "real_tokens_per_s": tokens_per_s,
                     "mfu": tokens_per_s * first["flops_per_token"] / 1e9 / peaks[first["precision"]],
                     "peak_memory_mb": max(r["peak_memory_mb"] for r in measured),
                     "dev_accuracy": first.get("dev_accuracy")})
    return rows


def print_training(rows: list[dict]) -> None:
    by_name = {r["trainer"]: r for r in rows}
    print("\n| training | precision | examples/s | real tokens/s | MFU | peak memory | SST-2 dev accuracy | "
          "stellartune's speed-up (tokens/s) |")
    print("|---|---|---|---|---|---|---|---|")
    ours = by_name["stellartune"]["real_tokens_per_s"]
    for r in rows:
        accuracy = "" if r["dev_accuracy"] is None else f"{100 * r['dev_accuracy']:.1f}"
        print(f"| {r['trainer']} | {r['precision']} | {r['examples_per_s']:.1f} | {r['real_tokens_per_s']:.0f} | "
              f"{100 * r['mfu']:.1f}% | {r['peak_memory_mb']:.0f} MB | {accuracy} | "
              f"{ours / r['real_tokens_per_s']:.2f}x |")


def prediction_rows(args, model_folder: str, sets: dict[str, list[str]]) -> list[dict]:
    rows = []
    for set_name, texts in sets.items():
        path = Path(args.output) / f"predict-{set_name.split()[0]}.json"
        path.write_text(json.dumps(texts))
        runs = {name: measure(args, name, ["--texts", str(path), "--model-folder", model_folder])
                for name in ("pipeline", "stellartune predict")}
        same = sum(a == b for a, b in zip(runs["pipeline"]["labels"], runs["stellartune predict"]["labels"]))
        for name, run in runs.items():
            rows.append({"data": set_name, "predictor": name, "examples_per_s": len(texts) / run["seconds"],
                         "peak_memory_mb": run["peak_memory_mb"], "identical_labels": same / len(texts)})
    return rows


def print_prediction(rows: list[dict]) -> None:
    print("\n| prediction | data | examples/s | peak memory | labels identical to the pipeline's | speed-up |")
    print("|---|---|---|---|---|---|")
    for i in range(0, len(rows), 2):
        pipe, ours = rows[i], rows[i + 1]
        for r in (pipe, ours):
            print(f"| {r['predictor']} | {r['data']} | {r['examples_per_s']:.1f} | {r['peak_memory_mb']:.0f} MB | "
                  f"{100 * r['identical_labels']:.2f}% | {r['examples_per_s'] / pipe['examples_per_s']:.2f}x |")


def train_all(args, peaks: dict) -> list[dict]:
    runs = {name: [] for name in TRAINERS}
    for round_ in range(args.rounds):
        for name in TRAINERS[round_ % 3:] + TRAINERS[: round_ % 3]:  # rotate the order each round
            runs[name].append(measure(args, name))
            print(f"round {round_ + 1}: {name}: {runs[name][-1]['train_seconds']:.1f} s", flush=True)
    training = training_table(runs, peaks)
    print_training(training)
    return training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="Under 5 minutes: 2,000 training sentences, "
                        "400 sentences to predict, no IMDB")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--rounds", type=int, default=1, help="Alternating rounds of the three training runs")
    parser.add_argument("--train-examples", type=int, default=None, help="Train on the first N sentences (default: all)")
    parser.add_argument("--glue-examples", type=int, default=3000, help="Sentences the run_glue default trains on")
    parser.add_argument("--trainer-lr", type=float, default=5e-5, help="The learning rate of both trainings")
    parser.add_argument("--output", default="runs/bench-speed")
    parser.add_argument("--predict-only", action="store_true", help="Measure prediction only, with the model that "
                        "an earlier run left in --output")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--texts", help=argparse.SUPPRESS)
    parser.add_argument("--model-folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if not (SHARED / "sst2").exists():
        raise SystemExit(f"needs SST-2 in {SHARED / 'sst2'}")
    if args.short:
        args.train_examples, args.glue_examples = args.train_examples or 2000, min(args.glue_examples, 500)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    args.bf16 = peaks["bf16"] > 1.5 * peaks["fp32"]  # the CPU has bf16 units (AVX512-BF16, AMX)
    print(f"matmul peak (2048 x 2048): fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s, "
          f"{torch.get_num_threads()} threads; the Trainer's best run uses {'bf16' if args.bf16 else 'fp32'}")

    training = None if args.predict_only else train_all(args, peaks)

    dev_texts = sst2("dev.tsv")[0][: 400 if args.short else None]
    sets = {f"SST-2 dev ({len(dev_texts)})": dev_texts}
    if not args.short:
        sets["IMDB test (2,000 reviews)"] = imdb_reviews(2000)
    prediction = prediction_rows(args, str(Path(args.output) / "stellartune"), sets)
    print_prediction(prediction)
    summary = {"matmul_peak_gflops": peaks, "settings": vars(args), "training": training, "prediction": prediction}
    details = Path(args.output, "summary-predict.json" if args.predict_only else "summary.json")
    details.write_text(json.dumps(summary, indent=2))
    print(f"\ndetails: {details}")


if __name__ == "__main__":
    main()
