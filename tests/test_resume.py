"""A run killed with SIGKILL mid-training and resumed ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import tsv_slice, data_file

pytestmark = pytest.mark.slow


def train_command(train, dev, output, *extra) -> list[str]:
    return [sys.executable, "-m", "stellartune.cli", "train", "--train", str(train), "--eval", str(dev),
            "--output", str(output), "--max-steps", "24", "--eval-steps", "4", "--batch-size", "8",
            "--lr", "1e-4", "--seed", "7", "--no-progress", *extra]


def float_metrics(run) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if isinstance(v, float) and k != "train_seconds"}


def kill_after_checkpoint(command, checkpoints, step: int) -> None:
    """Start training, wait until the checkpoint of `step` exists, then SIGKILL it mid-run."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(6000):  # polls every 0.05 s: a guard against hanging, not a speed check
        if (checkpoints / f"step-{step:08d}").exists():
            break
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.05)
    else:
        pytest.fail("no checkpoint appeared")
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    train = tsv_slice(data_file("sst2/train.tsv"), tmp_path / "train.tsv", 300)
    dev = tsv_slice(data_file("sst2/dev.tsv"), tmp_path / "dev.tsv", 120)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    subprocess.run(train_command(train, dev, whole), check=True, capture_output=True)

    kill_after_checkpoint(train_command(train, dev, broken), broken / "checkpoints", step=12)
    assert not (broken / "model").exists()
    refused = subprocess.run(train_command(train, dev, broken), capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr  # never silently restarts over a checkpoint
    resumed = subprocess.run(train_command(train, dev, broken, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr

    assert float_metrics(broken) == float_metrics(whole)
    scores = lambda run: [r["score"] for r in map(json.loads, (run / "eval_predictions.jsonl").read_text().splitlines())]
    assert scores(broken) == scores(whole)
    logged = [json.loads(line)["step"] for line in (broken / "log.jsonl").read_text().splitlines()]
    assert max(logged) == 24
