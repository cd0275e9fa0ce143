"""The training loop: one engine for every task.

`optimizer_steps` trains and yields after every optimizer step; `train_model`, its caller, owns
what happens between steps (log, progress, evaluation, checkpoints, early stopping), as spaCy's
`train_while_improving` does. Data order is a pure function of (seed, epoch) and checkpoints hold
every piece of state, so a run killed at any moment and resumed ends with the same weights as an
uninterrupted one. Under `torchrun` / `accelerate launch` each process takes an equal share of
every global batch and only rank 0 writes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..batching.batches import batch_inputs, shard, training_batches
from ..batching.logits import compute_logits
from ..errors import StellarError, some
from ..models.inputs import accepted_inputs, forward_logits
from ..strategies import GradualUnfreezing, train_mode
from .checkpoint import (
    BrokenCheckpoint,
    checkpoints_newest_first,
    load_checkpoint,
    load_weights,
    prune_checkpoints,
    save_checkpoint,
)
from .optim import build_optimizer, build_scheduler
from .trackers import tracked_values


@dataclass
class LoopState:
    """Everything a checkpoint needs besides weights, optimizer and RNG to resume exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already trained on
    best_metric: float | None = None
    best_step: int | None = None
    best_checkpoint: str | None = None
    stale_evals: int = 0
    stopped_early: bool = False


@dataclass
class Step:
    """What one optimizer step reports to the loop's caller."""

    loss: float
    examples: int
    seconds: float
    epoch_done: bool  # the last batch of an epoch
    epochs: float  # epochs trained, as a fraction


class RunLog:
    """The JSONL log of every logged step and evaluation (rank 0 only), also sent to the --report-to trackers."""

    def __init__(self, path: Path, accelerator):
        self.path, self.accelerator = path, accelerator

    def write(self, record: dict) -> None:
        if self.accelerator.is_main_process:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")
        if self.accelerator.log_with:
            self.accelerator.log(tracked_values(record), step=record["step"])


class LossWindow:
    """Mean loss and examples/s over the steps since the last log line, evaluation time excluded."""

    def __init__(self):
        self.start, self.steps, self.examples, self.loss = time.perf_counter(), 0, 0, 0.0

    def add(self, step: Step) -> None:
        self.steps, self.examples, self.loss = self.steps + 1, self.examples + step.examples, self.loss + step.loss

    def pause(self, seconds: float) -> None:
        self.start += seconds

    def record(self, step: int, epochs: float, lr: float) -> dict:
        """The log line; the window starts again. The mean is over the steps it saw (after a resume
        in mid-window, fewer than --log-steps)."""
        elapsed = time.perf_counter() - self.start
        record = {"step": step, "epoch": round(epochs, 4), "loss": self.loss / self.steps, "lr": lr,
                  "examples_per_s": self.examples / elapsed}
        self.__init__()
        return record


class TrainingPlan:
    """How many steps a run takes and which batches each epoch holds, for this process layout."""

    def __init__(self, train_set, config, world: int, say):
        self.lengths, self.config, self.parts = train_set.lengths, config, world * config.grad_accum
        first = self.batches(0)
        skipped = len(train_set) - sum(map(len, first))
        if skipped:
            say(f"{skipped} example(s) per epoch left out: the last partial batch is smaller than "
                f"{self.parts} (processes x accumulation steps)")
        self.total_steps = config.max_steps or math.ceil(len(first) * config.epochs)
        self.eval_every = config.eval_steps or len(first)

    def batches(self, epoch: int) -> list[list[int]]:
        """Each process and accumulation step needs at least one example of every batch."""
        return [b for b in training_batches(self.lengths, self.config.batch_size, self.config.seed, epoch)
                if len(b) >= self.parts]


def train_model(model, task, train_set, eval_set, tokenizer, config, run_dir: Path, accelerator, say,
                unfreezer: GradualUnfreezing | None = None) -> tuple[LoopState, torch.Tensor | None]:
    """Train (resuming when asked), evaluate and checkpoint on the way, restore the best weights. Also returns
    the last evaluation's logits when the final weights are the ones it evaluated (None otherwise)."""
    if unfreezer and accelerator.num_processes > 1:
        raise StellarError("--unfreeze gradual runs in one process for now (DDP fixes the trained parameters "
                           "when it starts); drop it or train without torchrun")
    plan = TrainingPlan(train_set, config, accelerator.num_processes, say)
    accepted = accepted_inputs(model)  # before prepare: a DDP wrapper's forward takes *args, **kwargs
    optimizer = build_optimizer(model, config)  # before unfreezing: holds all that will train
    scheduler = build_scheduler(optimizer, config.scheduler, plan.total_steps, config.warmup_ratio)
    model, optimizer = accelerator.prepare(model, optimizer)
    checkpoints, log = run_dir / "checkpoints", RunLog(run_dir / "log.jsonl", accelerator)
    state = resumed_state(config, checkpoints, model, optimizer, scheduler, accelerator, plan, say)

    progress = tqdm(total=plan.total_steps, initial=state.step, desc="training", unit="step", dynamic_ncols=True,
                    disable=not (accelerator.is_main_process and config.progress))
    window, epoch_seconds, shown = LossWindow(), 0.0, {}  # shown: the progress bar's loss and last metric
    logits = None
    for step in optimizer_steps(model, task, train_set, tokenizer, accepted, optimizer, scheduler, config,
                                accelerator, state, plan, unfreezer, say):
        epoch_seconds += step.seconds
        if step.epoch_done:
            log.write({"epoch_end": state.epoch + 1, "step": state.step, "train_seconds": round(epoch_seconds, 3)})
            epoch_seconds = 0.0
        window.add(step)
        shown["loss"] = f"{step.loss:.4f}"
        progress.update(1)
        progress.set_postfix(shown, refresh=False)
        if state.step % config.log_steps == 0:
            log.write(window.record(state.step, step.epochs, scheduler.get_last_lr()[0]))
        if state.step % plan.eval_every == 0 or state.step == plan.total_steps:
            started = time.perf_counter()
            value, logits = evaluate_and_checkpoint(model, optimizer, scheduler, task, eval_set, tokenizer, config,
                                                    checkpoints, accelerator, state, log, say)
            shown[metric_name(config, task)] = f"{value:.4f}"
            window.pause(time.perf_counter() - started)  # throughput counts training time only
            progress.set_postfix(shown)
        if state.stopped_early:
            break
    progress.close()
    if config.restore_best and state.best_checkpoint and state.best_step != state.step:
        if restore_best(model, state, accelerator, metric_name(config, task), say):
            logits = None
    accelerator.unwrap_model(model, keep_fp32_wrapper=False)  # drop prepare's autocast: from here it runs as saved
    return state, logits


def restore_best(model, state: LoopState, accelerator, metric: str, say) -> bool:
    """Whether the best checkpoint's weights were loaded."""
    try:
        load_weights(Path(state.best_checkpoint), accelerator.unwrap_model(model))
    except BrokenCheckpoint as e:  # damaged since it was written: the final weights are kept, and said so
        say(f"kept the final weights: the best checkpoint ({state.best_checkpoint}) is damaged: {e}")
        return False
    say(f"restored the best checkpoint (step {state.best_step}, {metric} = {state.best_metric:.4f})")
    return True


def resumed_state(config, checkpoints: Path, model, optimizer, scheduler, accelerator, plan, say) -> LoopState:
    """A fresh state, or with --resume the newest intact checkpoint's (weights, optimizer, schedule and RNG
    loaded); a damaged one is skipped with its reason, and none intact stops the run."""
    if not config.resume:
        return LoopState()
    found = checkpoints_newest_first(checkpoints)
    if not found:
        say(f"--resume: no checkpoint in {checkpoints}; training from the start")
        return LoopState()
    damaged = []
    for path in found:
        try:
            state = LoopState(**load_checkpoint(path, accelerator.unwrap_model(model), optimizer, scheduler))
        except (BrokenCheckpoint, TypeError) as e:  # TypeError: state.json without the loop's fields
            damaged.append(f"{path.name}: {e}")
            say(f"skipped the checkpoint {path}: {e}")
            continue
        say(f"resumed from {path} (step {state.step} of {plan.total_steps})")
        return state
    raise StellarError(f"{checkpoints}: no intact checkpoint to resume from ({some(damaged, 2)}); delete that folder "
                       "to train from the start")


def optimizer_steps(model, task, train_set, tokenizer, accepted: set[str], optimizer, scheduler, config, accelerator,
                    state: LoopState, plan: TrainingPlan, unfreezer, say) -> Iterator[Step]:
    """Optimizer steps until the plan's last (or until the caller stops asking), from where `state` is."""
    while state.step < plan.total_steps and not state.stopped_early:
        batches = plan.batches(state.epoch)
        for batch in batches[state.batch_in_epoch :]:
            started = time.perf_counter()
            if unfreezer and (change := unfreezer.update(state.epoch, state.step)):
                say(change)
            loss = train_step(model, task, train_set, batch, tokenizer, accepted, optimizer, scheduler, config,
                              accelerator)
            state.step, state.batch_in_epoch = state.step + 1, state.batch_in_epoch + 1
            yield Step(loss, len(batch), time.perf_counter() - started, state.batch_in_epoch == len(batches),
                       state.epoch + state.batch_in_epoch / len(batches))
            if state.step >= plan.total_steps:
                return
        state.epoch, state.batch_in_epoch = state.epoch + 1, 0


def train_step(model, task, train_set, batch: list[int], tokenizer, accepted, optimizer, scheduler, config,
               accelerator) -> float:
    """One optimizer step over a global batch: its micro-batches, each this process's share; the loss."""
    world, rank = accelerator.num_processes, accelerator.process_index
    train_mode(accelerator.unwrap_model(model))
    step_loss = 0.0
    for k in range(config.grad_accum):
        local = shard(shard(batch, config.grad_accum, k), world, rank)
        inputs = batch_inputs(train_set, local, tokenizer, accepted)
        inputs = {key: value.to(accelerator.device) for key, value in inputs.items()}
        targets = train_set.targets[local].to(accelerator.device)
        with accelerator.no_sync(model) if k < config.grad_accum - 1 else nullcontext():
            with accelerator.autocast():
                # summed over examples / global batch size; x world because DDP averages ranks
                loss = task.loss(forward_logits(model, inputs), targets).sum() * world / len(batch)
            accelerator.backward(loss)
        step_loss += loss.item() / world
    if config.max_grad_norm:
        accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return step_loss


def metric_name(config, task) -> str:
    return task.primary_metric if config.metric == "auto" else config.metric


def evaluate_and_checkpoint(model, optimizer, scheduler, task, eval_set, tokenizer, config, checkpoints,
                            accelerator, state: LoopState, log: RunLog, say) -> tuple[float, torch.Tensor]:
    """Evaluate, update best/early-stopping state, write a checkpoint; returns the watched metric and the logits."""
    logits = evaluation_logits(accelerator.unwrap_model(model), eval_set, tokenizer, config, accelerator)
    metrics = scored(task, logits, eval_set)
    name = metric_name(config, task)
    if name not in metrics:
        raise StellarError(f"--metric {name}: not a metric of this task; choose from "
                           f"{', '.join(k for k, v in metrics.items() if isinstance(v, float))}")
    value = metrics[name]
    better = task.improves(name, value, state.best_metric)
    if better:
        state.best_metric, state.best_step, state.stale_evals = value, state.step, 0
        state.best_checkpoint = str(checkpoints / f"step-{state.step:08d}")
    else:
        state.stale_evals += 1
        state.stopped_early = config.patience is not None and state.stale_evals >= config.patience
    log.write({"step": state.step, "eval": {k: v for k, v in metrics.items() if isinstance(v, float)}})
    say(f"step {state.step}: {name} = {value:.4f}" + (" (best)" if better else "")
        + (f"; early stop after {config.patience} evaluations without improvement" if state.stopped_early else ""))
    if accelerator.is_main_process:
        saved = save_checkpoint(checkpoints, state.step, accelerator.unwrap_model(model), optimizer, scheduler,
                                asdict(state))
        prune_checkpoints(checkpoints, {saved, Path(state.best_checkpoint)})
    accelerator.wait_for_everyone()
    return value, logits


def evaluate(model, task, encoded, tokenizer, config, accelerator) -> dict:
    return scored(task, evaluation_logits(model, encoded, tokenizer, config, accelerator), encoded)


def evaluation_logits(model, encoded, tokenizer, config, accelerator) -> torch.Tensor:
    return compute_logits(model, encoded, tokenizer, batch_size=2 * config.batch_size, device=accelerator.device,
                          autocast=accelerator.autocast)


def scored(task, logits: torch.Tensor, encoded) -> dict:
    """Calibrated, then scored: each evaluation, which chooses the checkpoint kept, is judged at its best
    threshold. The model's saved threshold is chosen on calibration data at the end (`training/recipe.py`)."""
    task.calibrate(logits, encoded)
    return task.metrics(logits, encoded)
