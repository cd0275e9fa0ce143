"""A run killed with SIGKILL mid-training and resumed ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import data_file, tsv_slice

pytestmark = pytest.mark.slow


def train_command(train, dev, output, *extra) -> list[str]:
    return [sys.executable, "-m", "stellartune.cli", "train", "--train", str(train), "--eval", str(dev),
            "--output", str(output), "--max-steps", "24", "--eval-steps", "4", "--batch-size", "8",
            "--lr", "1e-4", "--seed", "7", "--log-steps", "1", "--no-restore-best", "--no-progress", *extra]


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


def step_losses(run) -> dict[int, tuple[float, float]]:
    """(training loss, learning rate) logged at each step."""
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return {r["step"]: (r["loss"], r["lr"]) for r in records if "loss" in r}


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    train = tsv_slice(data_file("sst2/train.tsv"), tmp_path / "train.tsv", 300)
    dev = tsv_slice(data_file("sst2/dev.tsv"), tmp_path / "dev.tsv", 120)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    subprocess.run(train_command(train, dev, whole), check=True, capture_output=True)

    kill_after_checkpoint(train_command(train, dev, broken), broken / "checkpoints", step=12)
    assert not (broken / "model").exists()
    refused = subprocess.run(train_command(train, dev, broken), capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr  # never silently restarts over a checkpoint
    # a checkpoint write cut short (killed before its rename; here of a later step) is never resumed from
    half_written = broken / "checkpoints" / ".tmp-step-00000099"
    half_written.mkdir()
    (half_written / "model.safetensors").write_bytes(b"\0" * 100)
    # resumed with log lines every 7 steps: whatever checkpoint it resumes from (12, 16 or 20), its first
    # line covers part of a window, and must be the mean over the steps it saw
    resumed = subprocess.run(train_command(train, dev, broken, "--resume", "--log-steps", "7"), capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    resumed_from = int(resumed.stderr.split("resumed from ")[1].split("step-")[1][:8])
    assert 12 <= resumed_from < 24  # the newest complete checkpoint when it was killed

    # every step after the resume point trains on the same batches to the same loss, and ends in the same bytes
    whole_steps, logged = step_losses(whole), {s: v for s, v in step_losses(broken).items() if s > resumed_from}
    assert sorted(logged) == [s for s in (14, 21) if s > resumed_from]
    for step, (loss, lr) in logged.items():
        window = range(max(resumed_from, step - 7) + 1, step + 1)
        assert loss == pytest.approx(sum(whole_steps[s][0] for s in window) / len(window), rel=1e-6)
        assert lr == whole_steps[step][1]
    assert (broken / "model" / "model.safetensors").read_bytes() == (whole / "model" / "model.safetensors").read_bytes()
    assert float_metrics(broken) == float_metrics(whole)
    scores = lambda run: [r["score"] for r in map(json.loads, (run / "eval_predictions.jsonl").read_text().splitlines())]
    assert scores(broken) == scores(whole)
