"""Speed techniques one at a time: before/after figures in one run.

    python benchmarks/sst2_ablation.py     # about 5 minutes on 2 CPU cores

Training, `minilm` on the first --train-examples SST-2 sentences, one epoch, each run in its own
process (examples/s of the training loop, dev accuracy):
- the defaults;
- `--precision fp32`: no bf16 autocast;
- `--freeze word-embeddings` (not a default): the word-embedding table, 11.7M of minilm's 22.7M
  parameters, stays fixed.
The optimizer step alone (AdamW over minilm's parameters, --optimizer-steps steps, with and without
the word embeddings): `foreach` (one kernel per operation over all tensors) against `fused` (one
kernel for the whole update, stellartune's default).
Prediction with the default run's model, on the first --imdb IMDB test reviews at 128 tokens:
`--precision fp32` against the default `auto` (bf16 autocast where the CPU has bf16 units), labels
compared one by one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from sst2_speed import MAX_LENGTH, SHARED, imdb_reviews, sst2, write_tsv

VARIANTS = {"defaults": {}, "--precision fp32": {"precision": "fp32"}, "--freeze word-embeddings": {"freeze": "word-embeddings"}}


def train(args, settings: dict) -> dict:
    import stellartune

    texts, labels = sst2("train.tsv", args.train_examples)
    folder = Path(args.output)
    train_file = write_tsv(folder / "train.tsv", texts, labels)
    run = folder / ("defaults" if not settings else "-".join(f"{k}-{v}" for k, v in settings.items()))
    model = stellartune.fit(model="minilm", train=train_file, eval=str(SHARED / "sst2" / "dev.tsv"), output=str(run),
                            epochs=1, max_length=MAX_LENGTH, progress=False, **settings)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    seconds = next(r["train_seconds"] for r in log if "epoch_end" in r)
    return {"examples_per_s": len(texts) / seconds, "dev_accuracy": model.metrics["accuracy"]}


def optimizer_step_ms(steps: int, with_word_embeddings: bool, fused: bool) -> float:
    from transformers import AutoModelForSequenceClassification

    from stellartune.models import resolve_model
    from stellartune.models.quiet import quiet_transformers

    with quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(resolve_model("minilm"), num_labels=2)
    model.get_input_embeddings().weight.requires_grad_(with_word_embeddings)
    parameters = [p for p in model.parameters() if p.requires_grad]
    for p in parameters:
        p.grad = torch.randn_like(p) * 1e-3
    optimizer = torch.optim.AdamW(parameters, lr=5e-5, fused=fused, foreach=not fused)
    optimizer.step()  # allocates the state
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return 1000 * (time.perf_counter() - started) / steps


def predict(args, precision: str) -> dict:
    import stellartune

    texts = imdb_reviews(args.imdb)
    model = stellartune.load(Path(args.output) / "defaults")
    started = time.perf_counter()
    labels = [p["label"] for p in model.predict(texts, precision=precision)]
    return {"examples_per_s": len(texts) / (time.perf_counter() - started), "labels": labels}


def in_own_process(args, job: str, payload) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", job, "--payload", json.dumps(payload),
                           "--train-examples", str(args.train_examples), "--imdb", str(args.imdb),
                           "--output", args.output], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{job} {payload} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-examples", type=int, default=8000)
    parser.add_argument("--optimizer-steps", type=int, default=50)
    parser.add_argument("--imdb", type=int, default=500, help="IMDB test reviews to predict")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating prediction runs per precision")
    parser.add_argument("--output", default="runs/bench-ablation")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--payload", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        payload = json.loads(args.payload)
        print(json.dumps(train(args, payload) if args.worker == "train" else predict(args, payload)))
        return
    Path(args.output).mkdir(parents=True, exist_ok=True)

    print("| training (first {:,} SST-2 sentences, 1 epoch) | examples/s | speed-up over it | SST-2 dev accuracy |"
          .format(args.train_examples))
    print("|---|---|---|---|")
    trained = {name: in_own_process(args, "train", settings) for name, settings in VARIANTS.items()}
    for name, run in trained.items():
        print(f"| {name} | {run['examples_per_s']:.1f} | "
              f"{run['examples_per_s'] / trained['defaults']['examples_per_s']:.2f}x | {100 * run['dev_accuracy']:.1f} |")

    print(f"\n| AdamW step, {args.optimizer_steps} steps | foreach | fused | fused's speed-up |")
    print("|---|---|---|---|")
    for with_words in (True, False):
        foreach, fused = (optimizer_step_ms(args.optimizer_steps, with_words, f) for f in (False, True))
        print(f"| {'all parameters' if with_words else 'word embeddings fixed'} | {foreach:.1f} ms | {fused:.1f} ms | "
              f"{foreach / fused:.2f}x |")

    print(f"\n| prediction, {args.imdb} IMDB test reviews, median of {args.rounds} alternating runs | examples/s | "
          "speed-up | labels identical to fp32 |")
    print("|---|---|---|---|")
    runs = {"fp32": [], "auto": []}
    for round_ in range(args.rounds):
        for precision in (("fp32", "auto") if round_ % 2 == 0 else ("auto", "fp32")):
            runs[precision].append(in_own_process(args, "predict", precision))
    speed = {precision: statistics.median(r["examples_per_s"] for r in done) for precision, done in runs.items()}
    for precision, done in runs.items():
        same = sum(a == b for a, b in zip(done[0]["labels"], runs["fp32"][0]["labels"])) / len(done[0]["labels"])
        print(f"| --precision {precision} | {speed[precision]:.1f} | {speed[precision] / speed['fp32']:.2f}x | "
              f"{100 * same:.2f}% |")


if __name__ == "__main__":
    main()
