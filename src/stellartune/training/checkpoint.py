"""Checkpoints that are complete or absent: written to a temporary folder, then renamed.

A checkpoint holds the weights (safetensors), optimizer and scheduler state and the RNG state
(a `torch.save` file read back with `weights_only=True`, which loads tensors and plain values
only, never arbitrary objects), and the loop's counters as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from ..atomic import atomic_folder, ours

PREFIX = "step-"


class BrokenCheckpoint(Exception):
    """A checkpoint with a file that is missing or cannot be read (truncated, zeroed, overwritten)."""


def save_checkpoint(folder: Path, step: int, model, optimizer, scheduler, state: dict) -> Path:
    final = folder / f"{PREFIX}{step:08d}"
    folder.mkdir(parents=True, exist_ok=True)
    # overwrite: a damaged checkpoint of this step, skipped on resume, is written over
    with atomic_folder(final, checkpoint_megabytes(model, optimizer), overwrite=True) as tmp:
        save_model(model, str(tmp / "model.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
                   tmp / "training_state.pt")
        (tmp / "state.json").write_text(json.dumps(state))
    return final


def checkpoint_megabytes(model, optimizer) -> float:
    """Weights plus optimizer state (AdamW: two moments per trained parameter), as saved."""
    tensors = list(model.state_dict().values()) + [value for state in optimizer.state.values()
                                                    for value in state.values() if torch.is_tensor(value)]
    return sum(t.numel() * t.element_size() for t in tensors) / 1e6


def checkpoints_newest_first(folder: Path) -> list[Path]:
    """Complete checkpoints (a write cut short is still a .tmp- folder and never listed)."""
    return sorted(folder.glob(f"{PREFIX}*"), reverse=True) if folder.exists() else []


def latest_checkpoint(folder: Path) -> Path | None:
    return next(iter(checkpoints_newest_first(folder)), None)


def load_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
    """Load weights, optimizer, schedule and RNG; the loop's counters are returned. Every file is read
    before any state changes, except the weights, which safetensors checks before it copies them."""
    state = read_part(path / "state.json", lambda file: json.loads(file.read_text()))
    saved = read_part(path / "training_state.pt", read_torch_file)
    load_weights(path, model)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"])
    if saved["cuda_rng"]:
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    return state


def load_weights(path: Path, model) -> None:
    read_part(path / "model.safetensors", lambda file: load_model(model, str(file)))


def read_torch_file(file: Path) -> dict:
    if not zipfile.is_zipfile(file):  # torch's own message for this speaks of a legacy format
        raise ValueError("not a complete torch archive")
    return torch.load(file, weights_only=True)


def read_part(file: Path, read):
    """`read(file)`, or BrokenCheckpoint saying which file and why."""
    if not file.exists():
        raise BrokenCheckpoint(f"{file.name} is missing")
    try:
        return read(file)
    except Exception as e:  # safetensors, torch's zip reader and json fail on damage with many types
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BrokenCheckpoint(f"{file.name} cannot be read ({reason[:100]})") from None


def remove_checkpoints(folder: Path) -> None:
    """A finished run's checkpoints gone: only the step folders stellartune writes (anything else a user put
    in `folder` stays, and so does the folder then)."""
    if folder.is_dir():
        prune_checkpoints(folder, keep=set())
        if not any(folder.iterdir()):
            folder.rmdir()


def prune_checkpoints(folder: Path, keep: set[Path]) -> None:
    """Delete all but `keep` (latest and best) of the checkpoints stellartune wrote (marked, `atomic.py`), and
    leftovers of its interrupted writes (`.tmp-step-*`, its temporary names). A checkpoint is
    renamed out of sight before its files go: a run killed meanwhile never leaves half of one listed."""
    for path in folder.glob(f".tmp-{PREFIX}*"):
        if ours(path):  # its temporary folders carry the marker from the start; a user's of that name stays
            shutil.rmtree(path, ignore_errors=True)
    for path in folder.glob(f"{PREFIX}*"):
        if path not in keep and ours(path):  # a step folder without stellartune's marker is not one it wrote
            hidden = path.with_name(f".tmp-{path.name}")
            os.rename(path, hidden)
            shutil.rmtree(hidden, ignore_errors=True)
