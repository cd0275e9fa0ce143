"""The training loop: one engine for every task, and for pretraining.

A recipe builds a `Run` (model, task, data, loop settings, accelerator) and hands it to `train_model`;
every function here takes that run and at most a value or two. `optimizer_steps` trains and yields after
every optimizer step; `train_model`, its caller, owns what happens between steps (log, progress,
evaluation, checkpoints, early stopping), as spaCy's `train_while_improving` does. Data order is a pure function of (seed, epoch) and checkpoints hold
every piece of state, so a run killed at any moment and resumed ends with the same weights as an
uninterrupted one. Under `torchrun` / `accelerate launch` each process takes an equal share of
every global batch and only rank 0 writes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from ..batching.batches import batch_inputs, shard, training_batches
from ..batching.logits import compute_logits
from ..config import LoopConfig
from ..data.encoded import Encoded
from ..errors import StellarError, some
from ..models.inputs import accepted_inputs, forward_logits
from ..strategies import GradualUnfreezing, train_mode
from ..tasks.base import Objective
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
    best_metric: float | None = None  # the best evaluation so far
    best_step: int | None = None  # the checkpoint kept: the latest within one standard error of the best
    best_checkpoint: str | None = None
    kept_metric: float | None = None  # its evaluation
    stale_evals: int = 0
    stopped_early: bool = False

    def __post_init__(self):
        if self.kept_metric is None:  # saved before a checkpoint other than the best could be kept
            self.kept_metric = self.best_metric


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

    def __init__(self, train_set: Encoded, loop: LoopConfig, world: int):
        self.lengths, self.loop, self.parts = train_set.lengths, loop, world * loop.grad_accum
        first = self.batches(0)
        self.left_out = len(train_set) - sum(map(len, first))  # examples per epoch in no batch
        self.total_steps = loop.max_steps or math.ceil(len(first) * loop.epochs)
        self.eval_every = loop.eval_steps or len(first)

    def batches(self, epoch: int) -> list[list[int]]:
        """Each process and accumulation step needs at least one example of every batch."""
        return [b for b in training_batches(self.lengths, self.loop.batch_size, self.loop.seed, epoch)
                if len(b) >= self.parts]


@dataclass
class Run:
    """What one run's loop works on: built by a recipe, passed to every function of the loop (torchtune's
    recipe state). `prepare` adds the plan, optimizer, schedule, state and log."""

    model: torch.nn.Module
    task: Objective  # a task, or pretraining's objectives: loss, metrics, calibrate, improves
    train_set: Encoded
    eval_set: Encoded
    tokenizer: object
    loop: LoopConfig
    accelerator: Accelerator
    folder: Path  # the run folder: log.jsonl and checkpoints/
    say: Callable[[str], None]
    unfreezer: GradualUnfreezing | None = None
    watch: Callable[[float, float], None] | None = None  # (epochs trained, watched metric) after each evaluation
    started: float = field(default_factory=time.time, init=False)  # for train_seconds in metrics.json
    plan: TrainingPlan | None = field(default=None, init=False)
    optimizer: torch.optim.Optimizer | None = field(default=None, init=False)
    scheduler: object = field(default=None, init=False)
    accepted: set[str] = field(default_factory=set, init=False)  # the inputs the model's forward takes
    state: LoopState = field(default_factory=LoopState, init=False)
    log: RunLog | None = field(default=None, init=False)

    @property
    def checkpoints(self) -> Path:
        return self.folder / "checkpoints"

    @property
    def metric(self) -> str:
        """The metric that chooses the best checkpoint and stops early."""
        return self.task.primary_metric if self.loop.metric == "auto" else self.loop.metric

    @property
    def unwrapped(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)


def prepare(run: Run) -> None:
    """Plan, optimizer and schedule, the model wrapped for the processes and precision, and the state: fresh,
    or with --resume the newest intact checkpoint's."""
    if run.unfreezer and run.accelerator.num_processes > 1:
        raise StellarError("--unfreeze gradual runs in one process for now (DDP fixes the trained parameters "
                           "when it starts); drop it or train without torchrun")
    run.plan = TrainingPlan(run.train_set, run.loop, run.accelerator.num_processes)
    if run.plan.left_out:
        run.say(f"{run.plan.left_out} example(s) per epoch left out: the last partial batch is smaller than "
                f"{run.plan.parts} (processes x accumulation steps)")
    run.accepted = accepted_inputs(run.model)  # before prepare: a DDP wrapper's forward takes *args, **kwargs
    optimizer = build_optimizer(run.model, run.loop)  # before unfreezing: holds all that will train
    run.scheduler = build_scheduler(optimizer, run.loop.scheduler, run.plan.total_steps, run.loop.warmup_ratio)
    run.model, run.optimizer = run.accelerator.prepare(run.model, optimizer)
    run.log = RunLog(run.folder / "log.jsonl", run.accelerator)
    run.state = resumed_state(run) if run.loop.resume else LoopState()


def train_model(run: Run) -> torch.Tensor | None:
    """Train (resuming when asked), evaluate and checkpoint on the way, restore the best weights; `run.state`
    tells where it ended. Returns the last evaluation's logits when the final weights are the ones it
    evaluated (None otherwise)."""
    prepare(run)
    state, loop = run.state, run.loop
    progress = tqdm(total=run.plan.total_steps, initial=state.step, desc="training", unit="step", dynamic_ncols=True,
                    disable=not (run.accelerator.is_main_process and loop.progress))
    window, epoch_seconds, shown = LossWindow(), 0.0, {}  # shown: the progress bar's loss and last metric
    logits = None
    for step in optimizer_steps(run):
        epoch_seconds += step.seconds
        if step.epoch_done:
            run.log.write({"epoch_end": state.epoch + 1, "step": state.step, "train_seconds": round(epoch_seconds, 3)})
            epoch_seconds = 0.0
        window.add(step)
        shown["loss"] = f"{step.loss:.4f}"
        progress.update(1)
        progress.set_postfix(shown, refresh=False)
        if state.step % loop.log_steps == 0:
            run.log.write(window.record(state.step, step.epochs, run.scheduler.get_last_lr()[0]))
        if state.step % run.plan.eval_every == 0 or state.step == run.plan.total_steps:
            started = time.perf_counter()
            value, logits = evaluate_and_checkpoint(run)
            if run.watch:  # a search's pruner may stop the trial here (it raises)
                run.watch(step.epochs, value)
            shown[run.metric] = f"{value:.4f}"
            window.pause(time.perf_counter() - started)  # throughput counts training time only
            progress.set_postfix(shown)
        if state.stopped_early:
            break
    progress.close()
    if loop.restore_best and state.best_checkpoint and state.best_step != state.step and restore_best(run):
        logits = None
    run.accelerator.unwrap_model(run.model, keep_fp32_wrapper=False)  # drop prepare's autocast: runs as saved
    return logits


def restore_best(run: Run) -> bool:
    """Whether the kept checkpoint's weights were loaded."""
    state = run.state
    try:
        load_weights(Path(state.best_checkpoint), run.unwrapped)
    except BrokenCheckpoint as e:  # damaged since it was written: the final weights are kept, and said so
        run.say(f"kept the final weights: the checkpoint kept ({state.best_checkpoint}) is damaged: {e}")
        return False
    run.say(f"restored the checkpoint kept (step {state.best_step}, {run.metric} = {state.kept_metric:.4f}; the "
            f"best: {state.best_metric:.4f})")
    return True


def resumed_state(run: Run) -> LoopState:
    """The newest intact checkpoint's state (weights, optimizer, schedule and RNG loaded); a damaged one is
    skipped with its reason, none intact stops the run, and none at all starts it from the beginning."""
    found = checkpoints_newest_first(run.checkpoints)
    if not found:
        run.say(f"--resume: no checkpoint in {run.checkpoints}; training from the start")
        return LoopState()
    damaged = []
    for path in found:
        try:
            state = LoopState(**load_checkpoint(path, run.unwrapped, run.optimizer, run.scheduler))
        except (BrokenCheckpoint, TypeError) as e:  # TypeError: state.json without the loop's fields
            damaged.append(f"{path.name}: {e}")
            run.say(f"skipped the checkpoint {path}: {e}")
            continue
        run.say(f"resumed from {path} (step {state.step} of {run.plan.total_steps})")
        return state
    raise StellarError(f"{run.checkpoints}: no intact checkpoint to resume from ({some(damaged, 2)}); delete that "
                       "folder to train from the start")


def optimizer_steps(run: Run) -> Iterator[Step]:
    """Optimizer steps until the plan's last (or until the caller stops asking), from where `run.state` is."""
    state, plan = run.state, run.plan
    while state.step < plan.total_steps and not state.stopped_early:
        batches = plan.batches(state.epoch)
        for batch in batches[state.batch_in_epoch :]:
            started = time.perf_counter()
            if run.unfreezer and (change := run.unfreezer.update(state.epoch, state.step)):
                run.say(change)
            loss = train_step(run, batch)
            state.step, state.batch_in_epoch = state.step + 1, state.batch_in_epoch + 1
            yield Step(loss, len(batch), time.perf_counter() - started, state.batch_in_epoch == len(batches),
                       state.epoch + state.batch_in_epoch / len(batches))
            if state.step >= plan.total_steps:
                return
        state.epoch, state.batch_in_epoch = state.epoch + 1, 0


def train_step(run: Run, batch: list[int]) -> float:
    """One optimizer step over a global batch: its micro-batches, each this process's share; the loss."""
    accelerator, model, accumulation = run.accelerator, run.model, run.loop.grad_accum
    world, rank = accelerator.num_processes, accelerator.process_index
    train_mode(run.unwrapped)
    step_loss = 0.0
    for k in range(accumulation):
        local = shard(shard(batch, accumulation, k), world, rank)
        inputs = batch_inputs(run.train_set, local, run.tokenizer, run.accepted)
        inputs = {key: value.to(accelerator.device) for key, value in inputs.items()}
        targets = run.train_set.targets[local].to(accelerator.device)
        weights = run.train_set.weights
        with accelerator.no_sync(model) if k < accumulation - 1 else nullcontext():
            with accelerator.autocast():
                loss = run.task.loss(forward_logits(model, inputs), targets)
                if weights is not None:  # windows of one long text share its weight
                    loss = loss * weights[local].to(accelerator.device)
                # summed over examples / global batch size; x world because DDP averages ranks
                loss = loss.sum() * world / len(batch)
            accelerator.backward(loss)
        step_loss += loss.item() / world
    if run.loop.max_grad_norm:
        accelerator.clip_grad_norm_(model.parameters(), run.loop.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return step_loss


def evaluate_and_checkpoint(run: Run) -> tuple[float, torch.Tensor]:
    """Evaluate, update best/early-stopping state, write a checkpoint; returns the watched metric and the logits."""
    state, name, patience = run.state, run.metric, run.loop.patience
    logits = evaluation_logits(run.unwrapped, run.eval_set, run.tokenizer, run.loop.batch_size, run.accelerator)
    metrics = scored(run.task, logits, run.eval_set)
    if name not in metrics:
        raise StellarError(f"--metric {name}: not a metric of this task; choose from "
                           f"{', '.join(k for k, v in metrics.items() if isinstance(v, float))}")
    value, best = metrics[name], state.best_metric
    better = run.task.improves(name, value, best)
    kept = run.task.keeps(name, value, best, run.eval_set)
    if kept:
        state.best_step, state.kept_metric = state.step, value
        state.best_checkpoint = str(run.checkpoints / f"step-{state.step:08d}")
    if better:
        state.best_metric, state.stale_evals = value, 0
    else:
        state.stale_evals += 1
        state.stopped_early = patience is not None and state.stale_evals >= patience
    run.log.write({"step": state.step, "eval": {k: v for k, v in metrics.items() if isinstance(v, float)}})
    run.say(f"step {state.step}: {name} = {value:.4f}"
            + (" (best)" if better else f" (kept: {'level with' if value == best else 'within one standard error of'}"
                                       f" the best, {best:.4f})" if kept else "")
            + (f"; early stop after {patience} evaluations without improvement" if state.stopped_early else ""))
    if run.accelerator.is_main_process:
        saved = save_checkpoint(run.checkpoints, state.step, run.unwrapped, run.optimizer, run.scheduler,
                                asdict(state))
        prune_checkpoints(run.checkpoints, {saved, Path(state.best_checkpoint)})
    run.accelerator.wait_for_everyone()
    return value, logits


def evaluate(run: Run) -> dict:
    """The scores of the model as it is now on the evaluation set."""
    return scored(run.task, evaluation_logits(run.unwrapped, run.eval_set, run.tokenizer, run.loop.batch_size,
                                              run.accelerator), run.eval_set)


def evaluation_logits(model, encoded: Encoded, tokenizer, batch_size: int, accelerator) -> torch.Tensor:
    return compute_logits(model, encoded, tokenizer, batch_size=2 * batch_size, device=accelerator.device,
                          autocast=accelerator.autocast)


def scored(task, logits: torch.Tensor, encoded: Encoded) -> dict:
    """Calibrated, then scored: each evaluation, which chooses the checkpoint kept, is judged at its best
    threshold. The model's saved threshold is chosen on calibration data at the end (`training/recipe.py`)."""
    logits, encoded = task.per_text(logits, encoded)
    task.calibrate(logits, encoded)
    return task.metrics(logits, encoded)
