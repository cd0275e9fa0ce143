"""Every transfer strategy on the same SST-2 slice and RTE slice with minilm, in one table.

    python benchmarks/strategies.py                       # 1,000 SST-2 / 600 RTE training rows, 2 epochs
    python benchmarks/strategies.py --sst2-rows 4000 --epochs 3

Each strategy runs in its own process (so peak memory is its own) and reports the dev metric
(accuracy), trainable parameters, wall time (model loading and tokenization included) and peak
resident memory. A second part times the head-only fast path: epochs 2 and 3 of a frozen
encoder with cached features against the same run without the cache.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# name -> settings. Mean pooling wherever the method allows it (prompt and prefix tuning need the
# architecture's own head): minilm was trained as a mean-pooled sentence embedder and its BERT
# pooler is stale. Learning rates are the usual ones for each method (the head is new, so
# head-only, LoRA and prompt methods take larger ones).
MEAN = dict(pooling="mean")
STRATEGIES = {
    "full fine-tuning": dict(lr=1e-4, **MEAN),
    "freeze embeddings": dict(lr=1e-4, freeze="embeddings", **MEAN),
    "freeze layers:3": dict(lr=1e-4, freeze="layers:3", **MEAN),
    "head only (cached features)": dict(lr=1e-3, freeze="encoder", **MEAN),
    "gradual unfreezing": dict(lr=1e-4, head_lr=1e-3, unfreeze="gradual", **MEAN),
    "layer-wise lr decay 0.8, head lr 1e-3": dict(lr=1e-4, head_lr=1e-3, layer_lr_decay=0.8, **MEAN),
    "LoRA r=8": dict(lr=1e-3, peft="lora", **MEAN),
    "prompt tuning (20 tokens)": dict(lr=1e-2, peft="prompt"),
    "prefix tuning (20 tokens)": dict(lr=1e-2, peft="prefix"),
}


def slice_tsv(source: Path, target: Path, rows: int) -> str:
    lines = source.read_text(encoding="utf-8").splitlines()
    target.write_text("\n".join(lines[: rows + 1]) + "\n", encoding="utf-8")
    return str(target)


def run_one(name: str, train: str, dev: str, output: str, epochs: float, batch_size: int) -> dict:
    """One strategy, in this process: the numbers of one table cell."""
    import stellartune

    settings = dict(STRATEGIES[name])
    if settings.get("unfreeze") == "gradual":  # one more layer group every 1/8 epoch: all train by the end
        steps = sum(1 for _ in open(train)) // batch_size
        settings["unfreeze_every"] = max(1, int(steps * epochs) // 8)
    started = time.time()
    model = stellartune.fit(train=train, eval=dev, output=output, epochs=epochs, batch_size=batch_size,
                            progress=False, **settings)
    trainable = sum(p.numel() for p in model.model.parameters() if p.requires_grad)
    return {"accuracy": model.metrics["accuracy"], "trainable": trainable, "seconds": time.time() - started,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def in_subprocess(*args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def epoch_seconds(run: Path) -> list[float]:
    records = map(json.loads, (run / "log.jsonl").read_text().splitlines())
    return [r["train_seconds"] for r in records if "epoch_end" in r]


def cache_speedup(train: str, dev: str, folder: Path) -> tuple[float, float]:
    """Seconds per epoch (epochs 2-3) of head-only training with and without the feature cache."""
    import stellartune

    per_epoch = []
    for cache in (True, False):
        output = folder / f"cache-{cache}"
        stellartune.fit(train=train, eval=dev, output=str(output), epochs=3, batch_size=32, lr=1e-3,
                        freeze="encoder", pooling="mean", feature_cache=cache, progress=False)
        later = epoch_seconds(output)[1:]
        per_epoch.append(sum(later) / len(later))
    return per_epoch[0], per_epoch[1]


def table(rows: list[list], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines = [" | ".join(str(x).ljust(w) for x, w in zip(header, widths))]
    lines.append("-|-".join("-" * w for w in widths))
    lines += [" | ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in rows]
    return "\n".join(f"| {line} |" for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sst2-rows", type=int, default=1000)
    parser.add_argument("--rte-rows", type=int, default=600)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--one", nargs=4, metavar=("NAME", "TRAIN", "DEV", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one, args.epochs, args.batch_size)))
        return
    if not DATA.exists():
        raise SystemExit(f"needs the datasets in {DATA}")
    folder = Path(tempfile.mkdtemp(prefix="stellartune-strategies-"))
    sets = {"SST-2": (slice_tsv(DATA / "sst2/train.tsv", folder / "sst2.tsv", args.sst2_rows), str(DATA / "sst2/dev.tsv")),
            "RTE": (slice_tsv(DATA / "rte/train.tsv", folder / "rte.tsv", args.rte_rows), str(DATA / "rte/dev.tsv"))}
    rows = []
    for name in STRATEGIES:
        cells = [name]
        for data, (train, dev) in sets.items():
            result = in_subprocess("--one", name, train, dev, str(folder / f"{data}-{len(rows)}"),
                                   "--epochs", str(args.epochs), "--batch-size", str(args.batch_size))
            cells += [f"{result['accuracy']:.3f}", f"{result['seconds']:.0f} s", f"{result['peak_mb']:,.0f} MB"]
            print(name, data, result, file=sys.stderr, flush=True)
        cells.insert(1, f"{result['trainable']:,}")
        rows.append(cells)
    print(f"minilm, {args.sst2_rows} SST-2 and {args.rte_rows} RTE training rows, {args.epochs:g} epoch(s), "
          f"batch {args.batch_size}; dev accuracy (SST-2 872, RTE 277 examples), wall time, peak memory\n")
    print(table(rows, ["strategy", "trainable", "SST-2 acc", "time", "peak", "RTE acc", "time", "peak"]))
    cached, uncached = cache_speedup(*sets["SST-2"], folder)
    print(f"\nhead-only training, epochs 2-3: {cached:.2f} s/epoch with the feature cache, {uncached:.2f} s/epoch "
          f"running the frozen encoder: {uncached / cached:.0f}x faster")


if __name__ == "__main__":
    main()
