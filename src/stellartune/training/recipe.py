"""The fine-tuning recipe, top to bottom: data -> task -> model -> train -> evaluate -> run folder.

Read this file to know what `stellartune train` does; every step is a call into one module.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from transformers import set_seed

from ..atomic import MARKER, mark_ours, ours, refuse_foreign
from ..batching.logits import compute_logits
from ..config import TrainConfig
from ..data import split_examples
from ..data.overlap import Overlap
from ..errors import StellarError, some
from ..evaluation.report import metrics_report
from ..inference.precision import inference_autocast, resolve_precision
from ..inference.predictor import FineTunedModel
from ..models import (
    HeadConfig,
    load_tokenizer,
    output_layer,
    resolve_model,
)
from ..reports import REPORT_FILE, write_report
from ..strategies import (
    GradualUnfreezing,
    apply_strategy,
    describe_strategy,
    strategy_record,
)
from ..strategies.feature_cache import head_only_training
from ..strategies.peft import adapter_megabytes, is_peft, merge
from ..tasks import (
    columns_for,
    examples_for,
    problem_from_labels,
    read_for,
    recognised_task,
    task_class,
    task_for,
)
from .auto import optimisation_settings, settle_pooling
from .checkpoint import latest_checkpoint, remove_checkpoints
from .engine import train_model
from .model_card import write_model_card
from .run_lock import LOCK_FILE, run_lock
from .trackers import start_tracking, tracker_settings

logger = logging.getLogger("stellartune")

def fit(config: TrainConfig) -> FineTunedModel:
    started = time.time()
    accelerator, say = start_run(config)
    config, columns, train_examples, eval_examples = read_data(config, say)
    task = task_for(config.task, train_examples, config)
    if note := task.check_known_labels(eval_examples):
        say(note)
    train_examples, calibration_examples = calibration_data(config, task, columns, train_examples, say)
    model_path = resolve_model(config.model)
    config, why = settle_pooling(config, task, model_path)
    say(why)
    # locked against a second run for the whole run; after the data checks: bad input leaves no run folder
    with run_folder(config, accelerator) as run_dir:
        tokenizer = load_tokenizer(model_path, config.trust_remote_code)
        model = build_model(task, model_path, tokenizer, config, say)
        train_set, eval_set = encode(task, tokenizer, train_examples, eval_examples, config, say)
        config = settle_optimisation(config, task, model, len(train_set), run_dir, accelerator, say)
        start_at_the_prior(model, task, train_set)

        # ---- transfer strategy: what trains, at which rate, on what
        model = apply_strategy(model, config).to(accelerator.device)
        trained, train_input, eval_input = training_inputs(model, task, train_set, eval_set, tokenizer, model_path,
                                                           config, accelerator, say)
        unfreezer = GradualUnfreezing(model, config.unfreeze_every) if config.unfreeze == "gradual" else None
        state, logits = train_model(trained, task, train_input, eval_input, tokenizer, config, run_dir, accelerator,
                                    say, unfreezer)
        # the loop's last logits are the saved model's when it evaluated these weights, as saved, in fp32
        as_saved = (trained is model and not config.merge and accelerator.mixed_precision == "no"
                    and resolve_precision(config.precision, accelerator.device) == "fp32")
        model = merge(model) if config.merge else model
        if calibration_examples is not None:  # before the final evaluation, on data it does not score
            calibration_set = task.encode(calibration_examples, tokenizer, config.max_length)
            task.calibrate(compute_logits(model, calibration_set, tokenizer, 2 * config.batch_size,
                                          accelerator.device, inference_autocast(config.precision, accelerator.device)),
                           calibration_set)
        result = FineTunedModel(model, tokenizer, task, config.max_length, columns, config.label_delimiter, config.model,
                                run_dir=run_dir, strategy=strategy_record(config), precision=config.precision)
        finish_run(result, config, eval_set, eval_examples, state, time.time() - started, accelerator, say,
                   logits if as_saved else None)
        return result


def read_data(config: TrainConfig, say):
    """The settings with the task settled, the columns, and training and evaluation examples
    (a seeded split of the training data when no --eval is given)."""
    problem, why, columns, train_examples, eval_examples = read_examples(config)
    config = config.with_task(problem, task_class(problem).default_max_length)  # the defaults that depend on it
    if eval_examples is None:
        train_examples, eval_examples, kept = split_examples(
            train_examples, config.eval_split, config.seed, stratify=task_class(problem).stratified_split(problem),
            names_of=task_class(problem).label_names)
        say(f"held out {len(eval_examples)} of {len(train_examples) + len(eval_examples)} training rows for evaluation "
            f"(--eval-split {config.eval_split}, seed {config.seed})" + (
                f"; examples of {len(kept)} label(s) too rare to hold out stay in training ({some(kept, 4)})"
                if kept else ""))
    say(f"task: {problem}{' (sentence pairs)' if columns.pair else ''}, {why}; columns: {columns.describe()}; "
        f"{len(train_examples)} training and {len(eval_examples)} evaluation examples")
    overlap = Overlap.between(train_examples, eval_examples)
    say(("warning: " if overlap.worrying else "") + overlap.describe())
    return config, columns, train_examples, eval_examples


def calibration_data(config: TrainConfig, task, columns, train_examples, say):
    """(training examples, calibration examples or None): a task that tunes a setting on data (a decision
    threshold) tunes it on --calibration or on a held-out part of training, never on the data it is scored on."""
    if not task.calibrated:
        return train_examples, None
    if config.calibration is not None:
        table = read_for(task.problem, config.calibration, config.tag_column)
        found = columns_for(task.problem, table, columns.text, columns.pair, columns.label)
        calibration = examples_for(task.problem, table, found, config.label_delimiter)
        say(f"{task.threshold_name} is chosen on --calibration ({len(calibration)} examples), not on the evaluation data")
        return train_examples, calibration
    if int(len(train_examples) * config.calibration_split) < 1:
        say(f"{task.threshold_name} is chosen on the training rows: {len(train_examples)} are too few to hold some "
            "out for it (give --calibration)")
        return train_examples, train_examples
    train_examples, calibration, _ = split_examples(train_examples, config.calibration_split, config.seed + 1,
                                                    stratify=False, names_of=task.label_names)
    say(f"{task.threshold_name} is chosen on {len(calibration)} training rows held out for it (--calibration-split "
        f"{config.calibration_split}; or give --calibration), not on the evaluation data")
    return train_examples, calibration


def build_model(task, model_path: str, tokenizer, config: TrainConfig, say):
    head = custom_head(config, task)
    model = task.build_model(model_path, tokenizer, config, head)
    say(f"model: {config.model} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters), "
        f"{'new custom ' + config.head + ' head on ' + head.pooling + ' pooling' if head else task.head_description} "
        f"with {len(task.labels)} output(s)")
    return model


def encode(task, tokenizer, train_examples, eval_examples, config: TrainConfig, say):
    """Both sets tokenized once, with what was cut or split said in the log."""
    train_set = task.encode(train_examples, tokenizer, config.max_length)
    eval_set = task.encode(eval_examples, tokenizer, config.max_length)
    for name, encoded in (("training", train_set), ("evaluation", eval_set)):
        if encoded.truncated:
            say(f"{encoded.truncated} of {len(encoded)} {name} examples were longer than --max-length "
                f"{config.max_length} tokens and were truncated")
        if encoded.split:
            say(f"{encoded.split} {name} examples were longer than --max-length {config.max_length} tokens and "
                "were split into windows (joined again for scoring)")
    return train_set, eval_set


def start_at_the_prior(model, task, train_set) -> None:
    """The new head's output bias at the training prior (a resumed run then loads its checkpoint over it)."""
    prior = task.prior_bias(train_set.targets)
    if prior is not None:
        with torch.no_grad():
            output_layer(model, len(prior)).bias.copy_(prior)


def training_inputs(model, task, train_set, eval_set, tokenizer, model_path: str, config: TrainConfig, accelerator,
                    say):
    """What the loop trains and on what: the model on token ids, or with the encoder frozen, the head on
    cached encoder outputs (the fast path)."""
    trained, train_input, eval_input = model, train_set, eval_set
    if config.freeze == "encoder" and config.feature_cache and task.one_output_per_text:
        fast_path = head_only_training(model, train_set, eval_set, tokenizer, model_path, config.precision,
                                       accelerator.device, accelerator.autocast, say)
        trained, train_input, eval_input = fast_path or (model, train_set, eval_set)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    say(f"strategy: {describe_strategy(config)}; {trainable:,} of {sum(p.numel() for p in model.parameters()):,} "
        "parameters train")
    return trained, train_input, eval_input


def finish_run(result: FineTunedModel, config: TrainConfig, eval_set, eval_examples, state, seconds: float,
               accelerator, say, logits: torch.Tensor | None = None) -> None:
    """The final evaluation, in the precision predict and evaluate run the saved model at (the reported
    metrics are what it gives), then the run folder. `logits`: the saved model's on `eval_set`, already
    computed."""
    model, task = result.model, result.task
    if logits is None:
        logits = compute_logits(model, eval_set, result.tokenizer, 2 * config.batch_size, accelerator.device,
                                inference_autocast(config.precision, accelerator.device))
    result.metrics = task.metrics(logits, eval_set)
    if accelerator.is_main_process:
        say("evaluation of the final model:\n" + metrics_report(result.metrics, task.labels))
        write_run(result, config, eval_examples, task.predictions(logits, eval_set, eval_examples), state, seconds)
        say(f"report: {result.run_dir / REPORT_FILE}")
        say(f"saved the model to {result.run_dir / 'model'}" + (
            f" (adapter and head only: {adapter_megabytes(result.run_dir / 'model'):.2f} MB; the base model loads "
            f"from {config.model})" if is_peft(model) else ""))
    accelerator.wait_for_everyone()


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


def settle_optimisation(config: TrainConfig, task, model, examples: int, run_dir: Path, accelerator, say
                        ) -> TrainConfig:
    """--lr and --batch-size when not given, said in the log and saved in config.yaml."""
    config, why = optimisation_settings(config, task, sum(p.numel() for p in model.parameters()), examples)
    if why:
        say(why)
        if accelerator.is_main_process:
            config.save(run_dir / "config.yaml")
    return config


def custom_head(config: TrainConfig, task) -> HeadConfig | None:
    """None for the architecture's own head, else stellartune's pooling + head (`config.pooling` settled)."""
    if config.pooling == "model" and config.head == "linear":
        return None
    if not task.one_output_per_text:
        raise StellarError(f"--pooling and --head shape a sentence classifier; --task {task.name} uses the "
                           "architecture's own head")
    pooling = "cls" if config.pooling == "model" else config.pooling
    return HeadConfig(pooling=pooling, kind=config.head, hidden=config.head_hidden, activation=config.head_activation,
                      dropout=next(d for d in (config.head_dropout, config.dropout, 0.1) if d is not None),
                      num_labels=len(task.labels))


def read_examples(config: TrainConfig):
    """(task, why that task, columns, training examples, evaluation examples or None) from --train / --eval."""
    if config.train is None:
        raise StellarError("--train is required: a CSV/TSV/JSON/JSONL/Parquet/CoNLL file or a dataset")
    table = read_for(config.task, config.train, config.tag_column)
    problem, why = config.task, "as --task says"
    if problem == "auto":
        problem, why = recognised_task(table), "as the data's columns show"
    columns = columns_for(problem, table, config.text_column, config.text_pair_column,
                          config.label_column)
    if problem is None:
        problem, why = problem_from_labels(table, columns.label, config.label_delimiter)
    train_examples = examples_for(problem, table, columns, config.label_delimiter)
    if config.eval is None:
        return problem, why, columns, train_examples, None
    eval_table = read_for(problem, config.eval, config.tag_column)
    eval_columns = columns_for(problem, eval_table, columns.text, columns.pair, columns.label)
    eval_examples = examples_for(problem, eval_table, eval_columns, config.label_delimiter)
    return problem, why, columns, train_examples, eval_examples


def no_accelerator() -> bool:
    """CPU-only machines: tells accelerate to run torchrun processes as CPU ranks (gloo)."""
    return not (torch.cuda.is_available() or torch.backends.mps.is_available())


def mixed_precision(precision: str) -> str:
    """accelerate's name for the precision (fp32 is "no"), `auto` settled for the device this run uses."""
    resolved = resolve_precision(precision, "cuda" if torch.cuda.is_available() else "cpu")
    return "no" if resolved == "fp32" else resolved


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


def write_run(result: FineTunedModel, config: TrainConfig, eval_examples, predictions, state, seconds: float):
    """Everything a run leaves: model, metrics, eval predictions, model card; checkpoints are removed."""
    run_dir = result.run_dir
    result.save(run_dir / "model", overwrite=True)  # --overwrite (or a new folder): check_run_folder
    summary = {**result.metrics, "best_step": state.best_step, "steps": state.step, "train_seconds": round(seconds, 1)}
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    with open(run_dir / "eval_predictions.jsonl", "w") as handle:
        for i, prediction in enumerate(predictions):
            record = {"text": eval_examples.texts[i]}
            if eval_examples.pairs:
                record["text_pair"] = eval_examples.pairs[i]
            record.update(gold=eval_examples.labels[i], **prediction)
            handle.write(json.dumps(record) + "\n")
    write_model_card(run_dir, config, result, state)
    remove_checkpoints(run_dir / "checkpoints")
    write_report(run_dir)
