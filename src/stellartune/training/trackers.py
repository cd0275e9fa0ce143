"""--report-to: the metrics a run logs also go to experiment trackers (TensorBoard, MLflow, W&B, ...),
through accelerate's trackers, so whatever accelerate supports works here with its own settings."""

from __future__ import annotations

from pathlib import Path

from ..errors import StellarError

TRACKERS_FOLDER = "trackers"  # in the run folder: where file-based trackers (TensorBoard, ...) write


def tracker_names(report_to: str) -> list[str]:
    """The trackers asked for, each known to accelerate and installed: accelerate alone would drop a
    missing one without a word (a debug line)."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers

    names = [name.strip() for name in report_to.split(",") if name.strip() not in ("", "none")]
    installed = {str(tracker) for tracker in get_available_trackers()}
    for name in names:
        if name not in LOGGER_TYPE_TO_CLASS:
            raise StellarError(f"--report-to {name}: not a tracker accelerate supports; choose from "
                               f"{', '.join(sorted(LOGGER_TYPE_TO_CLASS))}")
        if name not in installed:
            raise StellarError(f"--report-to {name}: the {name} package is not installed; pip install {name}, "
                               f"or leave out --report-to {name}")
    return names


def tracker_settings(report_to: str, run_dir: str | Path) -> dict:
    """The Accelerator arguments for these trackers (none: no tracking)."""
    names = tracker_names(report_to)
    return {"log_with": names, "project_dir": str(Path(run_dir) / TRACKERS_FOLDER)} if names else {}


def start_tracking(accelerator, run_dir: Path, settings: dict) -> None:
    """Open the trackers (main process only): the run's name, and its settings as hyperparameters."""
    if accelerator.log_with:
        scalars = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in settings.items()}
        accelerator.init_trackers(Path(run_dir).resolve().name, config=scalars)


def tracked_values(record: dict) -> dict:
    """A log.jsonl record as tracker scalars: training values by name, evaluation metrics as eval/NAME."""
    values = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
    values.update({f"eval/{k}": v for k, v in record.get("eval", {}).items() if isinstance(v, (int, float))})
    return values
