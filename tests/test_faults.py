"""Faults a long run meets, made for real: a second run into a busy folder, damaged checkpoints, a
read-only folder, a full disk. Each ends in one clear line (or a run that says what it did), never a
traceback or a silently wrong result."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import data_file, tsv_slice

pytestmark = pytest.mark.slow


def train_command(data: Path, output: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "stellartune.cli", "train", "--train", str(data / "train.tsv"), "--eval",
            str(data / "dev.tsv"), "--output", str(output), "--batch-size", "8", "--no-progress", *extra]


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The `error:` line of a run that stopped; it must be the last line and the only error."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    return last


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fault_data")
    tsv_slice(data_file("sst2/train.tsv"), folder / "train.tsv", 300)
    dev = tsv_slice(data_file("sst2/dev.tsv"), folder / "dev.tsv", 100)
    header, *rows = dev.read_text(encoding="utf-8").splitlines()
    flipped = [f"{text}\t{1 - int(label)}" for text, label in (row.rsplit("\t", 1) for row in rows)]
    (folder / "flipped.tsv").write_text("\n".join([header, *flipped]) + "\n", encoding="utf-8")
    return folder


def checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("step-*"))


def paused_with_two_checkpoints(process: subprocess.Popen, run: Path) -> None:
    """Pause `process` (SIGSTOP) once two checkpoints are on disk. Training on, the run would prune all but
    the one kept and the latest, and those become one folder whenever the latest is kept; paused, the two
    stay, and the run holds its folder without taking the cores from the tests beside it."""
    for _ in range(6000):  # polls every 0.05 s: a guard against hanging, not a speed check
        if len(checkpoints(run)) >= 2:
            process.send_signal(signal.SIGSTOP)
            if len(checkpoints(run)) >= 2:  # a prune between the look and the pause: look again, running
                return
            process.send_signal(signal.SIGCONT)
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.05)
    pytest.fail("no second checkpoint appeared")


@pytest.fixture(scope="module")
def live_run(data, tmp_path_factory):
    """A run in the middle of training, paused with two checkpoints on disk. It is evaluated on SST-2
    sentences with their labels flipped, so its accuracy there falls as it learns and the two are, most
    often, the one kept and a later one."""
    run = tmp_path_factory.mktemp("live") / "run"
    process = subprocess.Popen(train_command(data, run, "--max-steps", "5000", "--eval-steps", "8", "--eval",
                                             str(data / "flipped.tsv")),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    paused_with_two_checkpoints(process, run)
    yield run, process
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def interrupted(live_run) -> Path:
    """The live run's folder once its process was SIGKILLed: checkpoints of an interrupted run."""
    run, process = live_run
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert len(checkpoints(run)) >= 2  # 3 if killed mid-prune
    return run


def test_a_second_run_into_a_busy_folder_stops_naming_the_first(data, live_run):
    run, process = live_run
    config_before = (run / "config.yaml").read_bytes()
    for extra in ([], ["--resume"]):  # --resume while the first still holds it, too
        result = subprocess.run(train_command(data, run, "--max-steps", "2", *extra), capture_output=True, text=True)
        line = one_line_error(result)
        assert f"{run}: another run is writing to this folder (pid {process.pid} " in line, line
        assert "choose another --output" in line
    assert process.poll() is None  # the first run was left alone ...
    assert (run / "config.yaml").read_bytes() == config_before  # ... and so were its files


def test_resume_without_a_checkpoint_says_it_starts_from_the_beginning(data, tmp_path):
    result = subprocess.run(train_command(data, tmp_path / "fresh", "--max-steps", "1", "--resume"),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"--resume: no checkpoint in {tmp_path / 'fresh' / 'checkpoints'}; training from the start" in result.stderr


def damage(file: Path, how: str) -> None:
    if how == "truncated":
        with open(file, "r+b") as handle:
            handle.truncate(file.stat().st_size // 2)
    else:
        file.write_bytes(b"\0" * file.stat().st_size)


@pytest.mark.parametrize("name, how", [("model.safetensors", "truncated"), ("training_state.pt", "zeroed"),
                                       ("state.json", "truncated")])
def test_resume_skips_a_damaged_checkpoint_for_the_newest_intact_one(data, interrupted, tmp_path, name, how):
    run = tmp_path / "run"
    shutil.copytree(interrupted, run)
    intact, newest = checkpoints(run)[-2:]
    damage(newest / name, how)
    steps = int(intact.name.split("-")[1]) + 2  # two steps past the checkpoint it should resume from
    result = subprocess.run(train_command(data, run, "--max-steps", str(steps), "--eval-steps", "8", "--lr", "0",
                                          "--resume"), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"skipped the checkpoint {newest}: {name} cannot be read" in result.stderr
    assert f"resumed from {intact} (step {steps - 2} of {steps})" in result.stderr
    assert (run / "model" / "model.safetensors").exists()


def test_resume_with_no_intact_checkpoint_stops_with_one_line(data, interrupted, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(interrupted, run)
    *older, newest = checkpoints(run)
    for checkpoint in older:
        damage(checkpoint / "model.safetensors", "zeroed")
    (newest / "training_state.pt").unlink()
    result = subprocess.run(train_command(data, run, "--max-steps", "10", "--resume"), capture_output=True, text=True)
    line = one_line_error(result)
    assert f"{run / 'checkpoints'}: no intact checkpoint to resume from" in line
    assert f"{newest.name}: training_state.pt is missing" in line
    assert f"{older[-1].name}: model.safetensors cannot be read" in line


@contextlib.contextmanager
def tmpfs(folder: Path, options: str):
    """A small tmpfs mounted at `folder` (root only: skipped elsewhere, with the reason)."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                             text=True) if shutil.which("mount") else None
    if mounted is None or mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() if mounted else 'no mount command'}): "
                    "a full or read-only disk needs one")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_output_folder_is_one_line_before_any_training(data, tmp_path):
    with tmpfs(tmp_path / "ro", "size=1m,ro") as folder:
        result = subprocess.run(train_command(data, folder / "run", "--max-steps", "2"), capture_output=True, text=True)
    line = one_line_error(result)
    assert f"{folder / 'run'}: cannot write the run folder (read-only file system); choose another --output" in line
    assert "model:" not in result.stderr  # stopped before loading the model


def test_a_full_disk_stops_with_the_space_a_checkpoint_needs_and_leaves_no_half_checkpoint(data, tmp_path):
    with tmpfs(tmp_path / "small", "size=2m") as folder:
        result = subprocess.run(train_command(data, folder / "run", "--max-steps", "4", "--eval-steps", "2"),
                                capture_output=True, text=True)
        left = sorted(p.name for p in (folder / "run" / "checkpoints").iterdir())
    line = one_line_error(result)
    assert f"{folder / 'run' / 'checkpoints' / 'step-00000002'}: cannot write it (no space left on the device)" in line
    needed = float(line.split("it needs about ")[1].split(" MB")[0].replace(",", ""))
    assert 200 < needed < 400  # MiniLM's weights (91 MB) and AdamW's two moments
    assert left == []  # the half-written checkpoint was removed, not left to fill the disk
