"""Training under torchrun with 2 CPU processes (gloo) equals one process with the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import data_file, tsv_slice

pytestmark = pytest.mark.slow


def train_args(train, dev, output) -> list[str]:
    # dropout 0: each rank draws its own dropout masks, so only a deterministic model can match exactly;
    # fp32: bf16 rounds a rank's half-batch sums differently from the whole batch's
    return ["train", "--train", str(train), "--eval", str(dev), "--output", str(output), "--max-steps", "12",
            "--batch-size", "16", "--lr", "2e-4", "--warmup-ratio", "0", "--dropout", "0", "--precision", "fp32",
            "--no-progress"]


def eval_scores(run) -> list[float]:
    return [r["scores"]["1"] for r in map(json.loads, (run / "eval_predictions.jsonl").read_text().splitlines())]


@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
                    reason="torchrun (from torch) not on PATH")
def test_two_processes_match_one(tmp_path):
    train = tsv_slice(data_file("sst2/train.tsv"), tmp_path / "train.tsv", 192)
    dev = tsv_slice(data_file("sst2/dev.tsv"), tmp_path / "dev.tsv", 100)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    two = subprocess.run([torchrun, "--nproc_per_node", "2", "-m", "stellartune.cli",
                          *train_args(train, dev, tmp_path / "two")], env=env, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stderr.count("saved the model to") == 1  # only rank 0 writes and reports
    one = subprocess.run([sys.executable, "-m", "stellartune.cli", *train_args(train, dev, tmp_path / "one")],
                         env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-3000:]

    scores_two, scores_one = eval_scores(tmp_path / "two"), eval_scores(tmp_path / "one")
    assert max(scores_one) - min(scores_one) > 0.05  # training moved the new head off its near-constant start
    assert scores_two == pytest.approx(scores_one, abs=1e-4)
