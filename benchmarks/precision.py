"""What `--precision auto` should pick on this CPU: fp32 against bf16 autocast, side by side in one run.

    python benchmarks/precision.py        # about 6 minutes on 2 cores

Prints the bf16 and fp32 square-matmul rates that `auto` decides from (`inference/precision.py`: bf16 where
bf16 runs at least 1.5x fp32's rate), then trains `minilm` for 20 steps on 200 IMDB reviews cut at 512 tokens
and predicts 300 others, in fp32 and in bf16, twice each in turn (the faster of each pair is kept: a busy
moment slows one run, not both), and prints bf16's time against fp32's. CPUs with AVX512-BF16 differ: the
flags alone cannot tell whether bf16 pays.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from long_documents import imdb, write_csv

import stellartune
from stellartune.inference.precision import BF16_GAIN, cpu_runs_bf16_fast, matmul_rate

STEPS = 20
ROUNDS = 2


def one_run(precision: str, train: Path, texts: list[str], folder: Path) -> tuple[float, float]:
    """(seconds to train STEPS steps, reviews predicted per second), both in `precision`."""
    started = time.perf_counter()
    model = stellartune.fit(train=str(train), output=str(folder / f"{precision}-{time.time_ns()}"), max_steps=STEPS,
                            eval_steps=10 * STEPS, progress=False, precision=precision, max_length=512,
                            long_texts="truncate")
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model.predict(texts, precision=precision)
    return fit_seconds, len(texts) / (time.perf_counter() - started)


def main() -> None:
    fp32_rate, bf16_rate = matmul_rate(torch.float32), matmul_rate(torch.bfloat16)
    print(f"512 x 512 matmuls per second: fp32 {fp32_rate:.0f}, bf16 {bf16_rate:.0f} ({bf16_rate / fp32_rate:.2f}x); "
          f"auto picks {'bf16' if cpu_runs_bf16_fast() else 'fp32'} (bf16 where at least {BF16_GAIN}x)")
    train, test = imdb(200, 300, 7)
    results = {"fp32": [], "bf16": []}
    with tempfile.TemporaryDirectory(prefix="precision-") as scratch:
        train_file = write_csv(Path(scratch) / "train.csv", train)
        for _ in range(ROUNDS):
            for precision in results:
                results[precision].append(one_run(precision, train_file, [row["text"] for row in test], Path(scratch)))
                print(f"{precision}: {results[precision][-1]}", flush=True)
    fit = {precision: min(seconds for seconds, _ in runs) for precision, runs in results.items()}
    speed = {precision: max(rate for _, rate in runs) for precision, runs in results.items()}
    print(f"\n| precision | train {STEPS} steps, s | predict reviews/s |\n|---|---|---|")
    for precision in results:
        print(f"| {precision} | {fit[precision]:.1f} | {speed[precision]:.1f} |")
    print(f"\nbf16 against fp32: training takes {fit['bf16'] / fit['fp32']:.2f}x the time, prediction runs at "
          f"{speed['bf16'] / speed['fp32']:.2f}x the speed")


if __name__ == "__main__":
    main()
