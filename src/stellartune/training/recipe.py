"""The fine-tuning recipe, top to bottom: data -> task -> model -> train -> evaluate -> run folder.

Read this file to know what `stellartune train` does; every step is a call into one module. The run's
start and end (folder, lock, trackers, metrics, report) are `lifecycle.py`'s, shared with pretraining.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ..batching.logits import compute_logits
from ..config import LoopConfig, TrainConfig
from ..data import split_examples
from ..data.encoded import Encoded
from ..data.examples import Columns, Examples
from ..data.overlap import Overlap
from ..data.store import Store
from ..errors import StellarError, some
from ..evaluation.report import metrics_report
from ..inference.precision import inference_autocast, resolve_precision
from ..inference.predictor import FineTunedModel
from ..models import HeadConfig, load_tokenizer, output_layer, resolve_model
from ..strategies import (
    apply_strategy,
    describe_strategy,
    gradual_unfreezing,
    strategy_record,
)
from ..strategies.feature_cache import head_only_training
from ..strategies.peft import adapter_megabytes, is_peft, merge
from ..tasks import Task, check_options, detect_task, task_class, task_from_labels
from .auto import optimisation_settings, settle_few_shot, settle_pooling
from .engine import Run, train_model
from .few_shot import contrastive_stage, fit_head
from .lifecycle import close_run, run_folder, start_run
from .model_card import write_model_card


@dataclass
class TrainingData:
    """What a run trains, evaluates and calibrates on, in the columns found in the training data."""

    columns: Columns
    train: Examples
    eval: Examples
    calibration: Examples | None = None  # for a task that tunes a threshold (`Task.calibrated`)


@dataclass
class PreparedData:
    """What every run on one data set shares, read, checked and tokenized once: `fit` makes it for its run,
    a search (`stellartune tune`) for all of its trials."""

    config: TrainConfig  # with the task, pooling, few-shot, max length and reading settled
    task: Task
    data: TrainingData
    model_path: str
    tokenizer: object
    train_set: Encoded
    eval_set: Encoded


def fit(config: TrainConfig) -> FineTunedModel:
    accelerator, say = start_run(config)
    with accelerator.main_process_first():  # the others then map the files it stored, not copies of their own
        prepared = prepare_data(config, say)
    return train_prepared(prepared, prepared.config, accelerator, say)


def prepare_data(config: TrainConfig, say) -> PreparedData:
    """Read and check the data, settle what depends on it and on the model, tokenize both sets; before any
    run folder exists (bad input leaves none)."""
    config, task, data = read_data(config, say)
    model_path = resolve_model(config.model)
    config, why = settle_pooling(config, task, model_path)
    say(why)
    tokenizer = load_tokenizer(model_path, config.trust_remote_code)
    config = task.settle(data.train, tokenizer, config, say)
    train_set, eval_set = encode(task, tokenizer, data, config, say)
    return PreparedData(config, task, data, model_path, tokenizer, train_set, eval_set)


def train_prepared(prepared: PreparedData, config: TrainConfig, accelerator, say,
                   watch: Callable[[float, float], None] | None = None) -> FineTunedModel:
    """Train on prepared data with `config` (the prepared one, or a search trial's settings over it) into
    `config.output`; `watch(epochs, value)` sees each evaluation's watched metric (a search's pruner)."""
    task, tokenizer, data = prepared.task, prepared.tokenizer, prepared.data
    # locked against a second run for the whole run
    with run_folder(config, accelerator) as run_dir:
        model = build_model(task, prepared.model_path, tokenizer, config, say)
        train_set, eval_set = prepared.train_set, prepared.eval_set
        config = settle_optimisation(config, task, model, len(train_set), say)
        if accelerator.is_main_process:
            config.save(run_dir / "config.yaml")
        start_at_the_prior(model, task, train_set)

        # ---- transfer strategy: what trains, at which rate, on what
        model = apply_strategy(model, config).to(accelerator.device)
        run = Run(model, task, train_set, eval_set, tokenizer, LoopConfig.of(config), accelerator, run_dir, say,
                  gradual_unfreezing(model, config), watch)
        on_cached_features = use_feature_cache(run, config, prepared.model_path)
        if config.few_shot == "on":  # instead of the loop: measured, a loop after it loses accuracy
            contrastive_stage(run)
            fit_head(run)
            logits = None
        else:
            logits = train_model(run)
        # the loop's last logits are the saved model's when it evaluated these weights, as saved, in fp32
        as_saved = (not on_cached_features and not config.merge and accelerator.mixed_precision == "no"
                    and resolve_precision(config.precision, accelerator.device) == "fp32")
        model = merge(model) if config.merge else model
        if data.calibration is not None:  # before the final evaluation, on data it does not score
            calibrate(run, model, data.calibration, config)
        result = FineTunedModel(model, tokenizer, task, config.max_length, data.columns, config.label_delimiter,
                                config.model, run_dir=run_dir, strategy=strategy_record(config),
                                precision=config.precision)
        finish_run(run, result, config, (data.eval, eval_set), logits if as_saved else None)
        return result


def read_data(config: TrainConfig, say) -> tuple[TrainConfig, Task, TrainingData]:
    """The settings with the task settled, the task, and its training, evaluation and calibration examples
    (evaluation: a seeded split of the training data when no --eval is given)."""
    found, why, columns, train = read_training_examples(config)
    noted(train, say)
    check_options(config, found, say)
    config = config.with_task(found.name, found.default_max_length)  # the defaults that depend on it
    config, few_shot = settle_few_shot(config, found, train)
    if few_shot:
        say(few_shot)
    train, evaluation = evaluation_examples(config, found, columns, train, say)
    say(f"task: {found.name}{' (sentence pairs)' if columns.pair else ''}, {why}; columns: {columns.describe()}; "
        f"{len(train)} training and {len(evaluation)} evaluation examples")
    if evaluation is not train:
        overlap = Overlap.between(train, evaluation)
        say(("warning: " if overlap.worrying else "") + overlap.describe())
    task = found.from_examples(train, config)
    if note := task.check_known_labels(evaluation):
        say(note)
    return config, task, calibration_data(config, task, TrainingData(columns, train, evaluation), say)


def evaluation_examples(config: TrainConfig, found: type[Task], columns: Columns, train: Examples,
                        say) -> tuple[Examples, Examples]:
    """(training, evaluation) examples: --eval, else a seeded split of training, else (few-shot, where every
    example counts) the training examples themselves, said in the log."""
    if config.eval is not None:
        return train, noted(found.labeled_examples(config.eval, columns, config.label_delimiter, config.tag_column,
                                                   data_store(config)), say)
    if not config.held_out:
        say("no held-out evaluation: with this few examples every one trains; the final scores are on the "
            "training examples, which the model has seen (they show it learned them, not how it does on new "
            "text): give --eval, or --eval-split, for that")
        return train, train
    kept_in, held_out, kept = split_examples(train, config.held_out, config.seed, stratify=found.stratified_split,
                                             names_of=found.label_names)
    say(f"held out {len(held_out)} of {len(train)} training rows for evaluation (--eval-split {config.held_out}, "
        f"seed {config.seed})" + (f"; examples of {len(kept)} label(s) too rare to hold out stay in training "
                                  f"({some(kept, 4)})" if kept else ""))
    return kept_in, held_out


def read_training_examples(config: TrainConfig) -> tuple[type[Task], str, Columns, Examples]:
    """(the task's class, why that task, the columns, the training examples) from --train and --task; the task
    and columns are decided on the first rows (`Task.first_rows`)."""
    if config.train is None:
        raise StellarError("--train is required: a CSV/TSV/JSON/JSONL/Parquet/CoNLL file or a dataset")
    if config.task == "auto":
        found, table, why = detect_task(config.train, config.tag_column)
    else:
        found, why = task_class(config.task), "as --task says"
        table = found.first_rows(config.train, config.tag_column)
    columns = (found or Task).find_columns(table, config.text_column, config.text_pair_column, config.label_column)
    if found is None:
        found, why = task_from_labels(table, columns.label, config.label_delimiter)
    return found, why, columns, found.labeled_examples(config.train, columns, config.label_delimiter,
                                                       config.tag_column, data_store(config))


def noted(examples: Examples, say) -> Examples:
    """The examples, once the log has said where they are stored (or that they were reused)."""
    if examples.note:
        say(examples.note)
    return examples


def data_store(config: TrainConfig) -> Store | None:
    return Store.at(config.data_cache, config.progress)


def calibration_data(config: TrainConfig, task: Task, data: TrainingData, say) -> TrainingData:
    """A task that tunes a setting on data (a decision threshold) tunes it on --calibration or on a held-out
    part of training, never on the data it is scored on."""
    if not task.calibrated:
        return data
    if config.calibration is not None:
        calibration = noted(task.labeled_examples(config.calibration, data.columns, config.label_delimiter,
                                                  config.tag_column, data_store(config)), say)
        say(f"{task.threshold_name} is chosen on --calibration ({len(calibration)} examples), not on the evaluation data")
        return replace(data, calibration=calibration)
    if int(len(data.train) * config.calibration_split) < 1:
        say(f"{task.threshold_name} is chosen on the training rows: {len(data.train)} are too few to hold some "
            "out for it (give --calibration)")
        return replace(data, calibration=data.train)
    train, calibration, _ = split_examples(data.train, config.calibration_split, config.seed + 1, stratify=False,
                                           names_of=task.label_names)
    say(f"{task.threshold_name} is chosen on {len(calibration)} training rows held out for it (--calibration-split "
        f"{config.calibration_split}; or give --calibration), not on the evaluation data")
    return replace(data, train=train, calibration=calibration)


def build_model(task: Task, model_path: str, tokenizer, config: TrainConfig, say):
    head = custom_head(config, task)
    model = task.build_model(model_path, tokenizer, config, head)
    say(f"model: {config.model} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters), "
        f"{'new custom ' + config.head + ' head on ' + head.pooling + ' pooling' if head else task.head_description} "
        f"with {len(task.labels)} output(s)")
    return model


def encode(task: Task, tokenizer, data: TrainingData, config: TrainConfig, say):
    """Both sets tokenized once, with what was cut or split said in the log."""
    train_set = task.encode(data.train, tokenizer, config.max_length)
    eval_set = task.encode(data.eval, tokenizer, config.max_length)
    for name, encoded in (("training", train_set), ("evaluation", eval_set)):
        if encoded.note:
            say(f"{name} examples: {encoded.note}")
        if encoded.truncated:
            say(f"{encoded.truncated} of {len(encoded)} {name} examples were longer than --max-length "
                f"{config.max_length} tokens and were truncated")
        if encoded.split:
            say(f"{encoded.split} {name} examples were longer than --max-length {config.max_length} tokens and "
                f"were split into windows ({len(encoded)} in all; joined again for scoring)")
    return train_set, eval_set


def start_at_the_prior(model, task: Task, train_set) -> None:
    """The new head's output bias at the training prior (a resumed run then loads its checkpoint over it)."""
    prior = task.prior_bias(train_set.targets)
    if prior is not None:
        with torch.no_grad():
            output_layer(model, len(prior)).bias.copy_(prior)


def use_feature_cache(run: Run, config: TrainConfig, model_path: str) -> bool:
    """With the encoder frozen, the loop trains the head on cached encoder outputs (the fast path) when the
    head reads nothing else: whether it does. Says what trains."""
    model, fast_path = run.model, None
    if config.freeze == "encoder" and config.feature_cache and run.task.one_output_per_text:
        fast_path = head_only_training(model, run.train_set, run.eval_set, run.tokenizer, model_path,
                                       config.precision, run.accelerator.device, run.accelerator.autocast, run.say)
        if fast_path:
            run.model, run.train_set, run.eval_set = fast_path
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    run.say(f"strategy: {describe_strategy(config)}; {trainable:,} of {sum(p.numel() for p in model.parameters()):,} "
            "parameters train")
    return fast_path is not None


def calibrate(run: Run, model, examples: Examples, config: TrainConfig) -> None:
    """The task's threshold chosen on the calibration examples, with the model as it will be saved."""
    encoded = run.task.encode(examples, run.tokenizer, config.max_length)
    device = run.accelerator.device
    run.task.calibrate(*run.task.per_text(compute_logits(model, encoded, run.tokenizer, 2 * config.batch_size,
                                                         device, inference_autocast(config.precision, device)),
                                          encoded))


def finish_run(run: Run, result: FineTunedModel, config: TrainConfig, evaluation: tuple[Examples, Encoded],
               logits: torch.Tensor | None) -> None:
    """The final evaluation, in the precision predict and evaluate run the saved model at (the reported
    metrics are what it gives), then the run folder. `evaluation`: the examples and their token ids (the
    loop's own set may be cached encoder outputs); `logits`: the saved model's on them, already computed."""
    (eval_examples, eval_set), model, task, accelerator = evaluation, result.model, result.task, run.accelerator
    if logits is None:
        logits = compute_logits(model, eval_set, result.tokenizer, 2 * config.batch_size, accelerator.device,
                                inference_autocast(config.precision, accelerator.device))
    logits, per_text = task.per_text(logits, eval_set)
    result.metrics = task.metrics(logits, per_text)
    if accelerator.is_main_process:
        run.say("evaluation of the final model:\n" + metrics_report(result.metrics, task.labels))
        write_run(run, result, config, eval_examples, task.predictions(logits, per_text, eval_examples))
        run.say(f"saved the model to {result.run_dir / 'model'}" + (
            f" (adapter and head only: {adapter_megabytes(result.run_dir / 'model'):.2f} MB; the base model loads "
            f"from {config.model})" if is_peft(model) else ""))
    accelerator.wait_for_everyone()


def settle_optimisation(config: TrainConfig, task: Task, model, examples: int, say) -> TrainConfig:
    """--lr and --batch-size when not given, said in the log (and saved in config.yaml by the caller)."""
    config, why = optimisation_settings(config, task, sum(p.numel() for p in model.parameters()), examples)
    if why:
        say(why)
    return config


def custom_head(config: TrainConfig, task: Task) -> HeadConfig | None:
    """None for the architecture's own head, else stellartune's pooling + head (`config.pooling` settled)."""
    if config.pooling == "model" and config.head == "linear":
        return None
    if not task.one_output_per_text:
        raise StellarError(f"--pooling and --head shape a sentence classifier; --task {task.name} uses the "
                           "architecture's own head")
    pooling = "cls" if config.pooling == "model" else config.pooling
    return HeadConfig(pooling=pooling, normalize=config.few_shot == "on", kind=config.head, hidden=config.head_hidden, activation=config.head_activation,
                      dropout=next(d for d in (config.head_dropout, config.dropout, 0.1) if d is not None),
                      num_labels=len(task.labels))


def write_run(run: Run, result: FineTunedModel, config: TrainConfig, eval_examples: Examples, predictions):
    """Everything a run leaves: model, evaluation predictions, model card, then metrics and report."""
    run_dir = result.run_dir
    result.save(run_dir / "model", overwrite=True)  # --overwrite (or a new folder): check_run_folder
    with open(run_dir / "eval_predictions.jsonl", "w") as handle:
        for i, prediction in enumerate(predictions):
            record = {"text": eval_examples.texts[i]}
            if eval_examples.pairs:
                record["text_pair"] = eval_examples.pairs[i]
            record.update(gold=eval_examples.labels[i], **prediction)
            handle.write(json.dumps(record) + "\n")
    write_model_card(run_dir, config, result, run.state)
    close_run(run_dir, result.metrics, run.state, time.time() - run.started, run.say)
