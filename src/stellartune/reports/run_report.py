"""The HTML report of a run folder (`report.html`), and several runs side by side.

Built only from what a run folder holds (config.yaml, metrics.json, log.jsonl, eval_predictions.jsonl and
the saved task), so `stellartune report` rebuilds it without the model or the data."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..atomic import atomic_file
from ..config import PretrainConfig, TrainConfig
from ..errors import StellarError
from ..evaluation.sections import Lines, Section, Table
from ..inference.predictor import META_FILE
from ..tasks import task_from_dict
from .page import render_page

REPORT_FILE = "report.html"
CORE_SETTINGS = ("model", "train", "eval", "task", "epochs", "max_steps", "batch_size", "lr", "max_length",
                 "precision", "seed")
CURVES_PER_RUN = 4  # evaluation metrics drawn over steps, the watched one first


@dataclass
class Run:
    """What a finished run folder holds."""

    folder: Path
    settings: dict
    metrics: dict
    log: list[dict]
    records: list[dict]  # the evaluation predictions, with gold labels
    task: object | None  # the saved task (fine-tuning runs), None for pretraining

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def chosen_metric(self) -> str | None:
        """The metric the settings or the saved task name for the checkpoint kept (None: pretraining at auto)."""
        metric = self.settings.get("metric", "auto")
        return metric if metric != "auto" else self.task.primary_metric if self.task else None

    @property
    def watched(self) -> str:
        """The metric that chose the checkpoint kept."""
        return self.chosen_metric or next(iter(self.eval_metrics), "loss")

    @property
    def eval_metrics(self) -> list[str]:
        """The metrics logged at each evaluation, the watched one first."""
        names = list(dict.fromkeys(k for record in self.log for k in record.get("eval", {})))
        return sorted(names, key=lambda name: name != self.chosen_metric)


def read_run(folder: str | Path) -> Run:
    folder = Path(folder)
    missing = [name for name in ("config.yaml", "metrics.json") if not (folder / name).is_file()]
    if missing:
        raise StellarError(f"{folder}: not a finished stellartune run (no {' or '.join(missing)})")
    meta = folder / "model" / META_FILE
    return Run(folder, yaml.safe_load((folder / "config.yaml").read_text()) or {},
               json.loads((folder / "metrics.json").read_text()), read_jsonl(folder / "log.jsonl"),
               read_jsonl(folder / "eval_predictions.jsonl"),
               task_from_dict(json.loads(meta.read_text())["task"]) if meta.is_file() else None)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def write_report(folder: str | Path, output: str | Path | None = None) -> Path:
    """The report of one run, written to `output` (default: report.html in the run folder)."""
    run = read_run(folder)
    sections = [overview(run), curves(run), *(run.task.report_sections(run.records) if run.task and run.records
                                              else [])]
    return write_page(Path(output or run.folder / REPORT_FILE), f"stellartune run: {run.name}", subtitle(run),
                      sections)


def write_comparison(folders: list[str | Path], output: str | Path) -> Path:
    """Several runs side by side: their settings and final metrics in one table, their curves overlaid."""
    runs = [read_run(folder) for folder in folders]
    metrics = shared_metrics(runs)
    table = Table("Runs", ["run", *CORE_SETTINGS, *metrics, "train seconds"],
                  [[run.name, *(shown(run.settings.get(k)) for k in CORE_SETTINGS),
                    *(flat_metrics(run.metrics)[m] for m in metrics), run.metrics.get("train_seconds")] for run in runs])
    charts = [Lines("Training loss", "step", "loss", {run.name: loss_curve(run) for run in runs if run.log})]
    for metric in [m for m in runs[0].eval_metrics if all(m in run.eval_metrics for run in runs)][:CURVES_PER_RUN]:
        charts.append(Lines(f"Evaluation {metric}", "step", metric, {run.name: eval_curve(run, metric) for run in runs}))
    section = Section("Runs compared", [table, *charts], f"{len(runs)} runs: {', '.join(str(f) for f in folders)}")
    return write_page(Path(output), "stellartune: runs compared", ", ".join(run.name for run in runs), [section])


def shared_metrics(runs: list[Run]) -> list[str]:
    """The scalar final metrics every run has (the first run's order), the watched one first."""
    names = [name for name in flat_metrics(runs[0].metrics) if name not in ("best_step", "steps", "train_seconds")
             and all(name in flat_metrics(run.metrics) for run in runs)]
    return sorted(names, key=lambda name: name != runs[0].watched)


def write_page(path: Path, title: str, subtitle_text: str, sections: list[Section]) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_text(render_page(title, subtitle_text, sections), encoding="utf-8")
    return path


def subtitle(run: Run) -> str:
    return (f"{run.settings.get('model')} on {run.settings.get('train')}; {run.metrics.get('steps')} steps in "
            f"{run.metrics.get('train_seconds')} s; {run.watched} = {fmt(run.metrics.get(run.watched))} "
            f"(step kept: {run.metrics.get('best_step')})")


def fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def shown(value) -> str:
    return "—" if value is None else value if isinstance(value, str) else json.dumps(value)


def overview(run: Run) -> Section:
    settings = [[name, shown(run.settings.get(name))] for name in CORE_SETTINGS if name in run.settings]
    settings += [[name, shown(value)] for name, value in changed_settings(run.settings).items()
                 if name not in CORE_SETTINGS]
    final = [[name, value] for name, value in flat_metrics(run.metrics).items()]
    return Section("Run", [Table("Settings", ["setting", "value"], settings,
                                 "the main settings, then every other one that differs from its default"),
                           Table("Final metrics", ["metric", "value"], final,
                                 "the saved model on the evaluation set")],
                   f"wall time {run.metrics.get('train_seconds')} s; {run.metrics.get('steps')} optimizer steps; "
                   f"step kept: {run.metrics.get('best_step')}, by {run.watched}")


def changed_settings(settings: dict) -> dict:
    """Settings that differ from the defaults of the command that made the run (train or pretrain)."""
    for schema in (TrainConfig, PretrainConfig):
        fields = {f.name: f for f in dataclasses.fields(schema)}
        if set(settings) <= set(fields):
            defaults = {name: f.default for name, f in fields.items() if f.default is not dataclasses.MISSING}
            return {k: v for k, v in settings.items() if k in defaults and v != defaults[k]}
    return {}


def flat_metrics(metrics: dict) -> dict:
    """Scalar metrics; nested groups (pretraining's `before`) as group.name; per-class tables left to the sections."""
    flat = {}
    for name, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = value
        elif isinstance(value, dict) and all(isinstance(v, (int, float)) for v in value.values()):
            flat.update({f"{name}.{k}": v for k, v in value.items()})
    return flat


def loss_curve(run: Run) -> tuple[list, list]:
    points = [(r["step"], r["loss"]) for r in run.log if "loss" in r]
    return [p[0] for p in points], [p[1] for p in points]


def eval_curve(run: Run, metric: str) -> tuple[list, list]:
    points = [(r["step"], r["eval"][metric]) for r in run.log if metric in r.get("eval", {})]
    return [p[0] for p in points], [p[1] for p in points]


def curves(run: Run) -> Section:
    training = [r for r in run.log if "loss" in r]
    kept = {f"step kept: {run.metrics.get('best_step')}": run.metrics["best_step"]} if run.metrics.get("best_step") else {}
    charts = [Lines("Training loss", "step", "loss (mean over the logged window)", {"training": loss_curve(run)}),
              Lines("Learning rate", "step", "learning rate", {"lr": ([r["step"] for r in training],
                                                                      [r["lr"] for r in training])}),
              Lines("Throughput", "step", "training examples / s", {"examples/s": (
                  [r["step"] for r in training], [r["examples_per_s"] for r in training])})]
    charts[1:1] = [Lines(f"Evaluation {metric}", "step", metric, {metric: eval_curve(run, metric)},
                         kept if metric == run.watched else {}) for metric in run.eval_metrics[:CURVES_PER_RUN]]
    evaluations = sum("eval" in r for r in run.log)
    unlogged = "" if training else (f"; no training loss was logged: the run took fewer steps than --log-steps "
                                    f"({run.settings.get('log_steps')})")
    return Section("Training", [chart for chart in charts if any(x for x, _ in chart.series.values())],
                   f"{len(training)} logged windows, {evaluations} evaluations; the step kept, marked, is the "
                   f"checkpoint the saved model comes from{unlogged}")
