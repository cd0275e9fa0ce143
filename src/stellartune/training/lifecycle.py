"""A run's start and end, the same for fine-tuning and pretraining: the output folder checked before any work,
the accelerator and seed, the folder locked with the settings and trackers for the run, and at the end the
metrics, the checkpoints removed and the report."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from transformers import set_seed

from ..atomic import MARKER, mark_ours, ours, refuse_foreign
from ..errors import StellarError
from ..inference.precision import resolve_precision
from ..reports import write_report
from .checkpoint import latest_checkpoint, remove_checkpoints
from .run_lock import LOCK_FILE, run_lock
from .trackers import start_tracking, tracker_settings

logger = logging.getLogger("stellartune")


def start_run(config) -> tuple[Accelerator, Callable[[str], None]]:
    """The accelerator (device, precision, processes), a `say` that logs on the main process only, and the seed;
    first of all, the output checked: a run replaces nothing it was not asked to (`check_run_folder`)."""
    check_run_folder(Path(config.output), config)
    # accelerate keeps one precision per process; a second fit with another --precision starts it anew
    # (the process group, PartialState, is kept)
    AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(mixed_precision=mixed_precision(config.precision), cpu=no_accelerator(),
                              **tracker_settings(config.report_to, config.output))
    say = (lambda message: logger.info(message)) if accelerator.is_main_process else (lambda message: None)
    set_seed(config.seed)
    return accelerator, say


def no_accelerator() -> bool:
    """CPU-only machines: tells accelerate to run torchrun processes as CPU ranks (gloo)."""
    return not (torch.cuda.is_available() or torch.backends.mps.is_available())


def mixed_precision(precision: str) -> str:
    """accelerate's name for the precision (fp32 is "no"), `auto` settled for the device this run uses."""
    resolved = resolve_precision(precision, "cuda" if torch.cuda.is_available() else "cpu")
    return "no" if resolved == "fp32" else resolved


def check_run_folder(run_dir: Path, config) -> None:
    """A finished run is replaced, and a folder of other files written into, only when --overwrite says so;
    --resume needs checkpoints to resume from."""
    finished = (run_dir / "model" / MARKER).exists() or (run_dir / "metrics.json").exists()
    if config.overwrite or not run_dir.exists() or latest_checkpoint(run_dir / "checkpoints"):
        return
    if finished:
        raise StellarError(f"{run_dir}: holds a finished run" + (" (nothing to resume: it left no checkpoints)"
                           if config.resume else "") + "; add --overwrite to train again and replace its model "
                           "and results, or choose another --output")
    if not ours(run_dir) and not (run_dir / LOCK_FILE).exists():
        refuse_foreign(run_dir)


@contextlib.contextmanager
def run_folder(config, accelerator) -> Iterator[Path]:
    """The run folder, locked for the block (one run at a time), with the settings saved in it."""
    run_dir = Path(config.output)
    with run_lock(run_dir, enabled=accelerator.is_main_process):
        if not config.resume and latest_checkpoint(run_dir / "checkpoints"):
            raise StellarError(f"{run_dir}: holds checkpoints of an interrupted run; add --resume to continue it, "
                               "or choose another --output")
        if accelerator.is_main_process:
            mark_ours(run_dir)
            if not config.resume:
                (run_dir / "log.jsonl").unlink(missing_ok=True)
            config.save(run_dir / "config.yaml")
        start_tracking(accelerator, run_dir, config.to_dict())
        accelerator.wait_for_everyone()
        try:
            yield run_dir
        finally:
            accelerator.end_training()  # trackers flush and close


def close_run(run_dir: Path, metrics: dict, state, seconds: float, say) -> None:
    """The end of a finished run, once its model is saved (main process): metrics.json (with the step it
    ended at and the best one), the checkpoints removed, and the report."""
    summary = {**metrics, "best_step": state.best_step, "steps": state.step, "train_seconds": round(seconds, 1)}
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    remove_checkpoints(run_dir / "checkpoints")
    say(f"report: {write_report(run_dir)}")
