"""Checkpoints that are complete or absent: written to a temporary folder, then renamed.

A checkpoint holds the weights (safetensors), optimizer and scheduler state and the RNG state
(a `torch.save` file read back with `weights_only=True`, which loads tensors and plain values
only, never arbitrary objects), and the loop's counters as JSON.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from ..atomic import atomic_folder

PREFIX = "step-"


def save_checkpoint(folder: Path, step: int, model, optimizer, scheduler, state: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{PREFIX}{step:08d}"
    with atomic_folder(final, folder / f".tmp-{PREFIX}{step:08d}") as tmp:
        save_model(model, str(tmp / "model.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
                   tmp / "training_state.pt")
        (tmp / "state.json").write_text(json.dumps(state))
    return final


def latest_checkpoint(folder: Path) -> Path | None:
    complete = sorted(folder.glob(f"{PREFIX}*")) if folder.exists() else []
    return complete[-1] if complete else None


def load_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
    load_model(model, str(path / "model.safetensors"))
    saved = torch.load(path / "training_state.pt", weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"])
    if saved["cuda_rng"]:
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    return json.loads((path / "state.json").read_text())


def load_weights(path: Path, model) -> None:
    load_model(model, str(path / "model.safetensors"))


def prune_checkpoints(folder: Path, keep: set[Path]) -> None:
    """Delete all but `keep` (latest and best), and leftovers of interrupted writes."""
    for path in folder.glob(f"{PREFIX}*"):
        if path not in keep:
            shutil.rmtree(path, ignore_errors=True)
    for path in folder.glob(f".tmp-{PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
