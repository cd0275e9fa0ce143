"""The training loop: one engine for every task.

Data order is a pure function of (seed, epoch), checkpoints hold every piece of state, so a run
killed at any moment and resumed ends with the same weights as an uninterrupted one. Under
`torchrun` / `accelerate launch` each process takes an equal share of every global batch and
only rank 0 writes.
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import StellarError
from ..inference.logits import compute_logits
from ..models.loading import accepted_inputs, forward_logits
from .batching import batch_inputs, shard, training_batches
from .checkpoint import latest_checkpoint, load_checkpoint, load_weights, prune_checkpoints, save_checkpoint
from ..strategies import GradualUnfreezing, train_mode
from .optim import build_optimizer, build_scheduler

LOWER_IS_BETTER = {"mse", "loss", "perplexity"}


@dataclass
class LoopState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already trained on
    best_metric: float | None = None
    best_step: int | None = None
    best_checkpoint: str | None = None
    stale_evals: int = 0
    stopped_early: bool = False


class RunLog:
    """The JSONL log of every logged step and evaluation (rank 0 only)."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")


def usable_batches(lengths, config, epoch: int, parts: int) -> list[list[int]]:
    """Each process and accumulation step needs at least one example of every batch."""
    return [b for b in training_batches(lengths, config.batch_size, config.seed, epoch) if len(b) >= parts]


def train_model(model, task, train_set, eval_set, tokenizer, config, run_dir: Path, accelerator, say,
                unfreezer: GradualUnfreezing | None = None) -> LoopState:
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    if unfreezer and world > 1:
        raise StellarError("--unfreeze gradual runs in one process for now (DDP fixes the trained parameters "
                           "when it starts); drop it or train without torchrun")
    parts = world * config.grad_accum
    batches_per_epoch = len(usable_batches(train_set.lengths, config, 0, parts))
    skipped = len(train_set) - sum(map(len, usable_batches(train_set.lengths, config, 0, parts)))
    if skipped:
        say(f"{skipped} example(s) per epoch left out: the last partial batch is smaller than "
            f"{parts} (processes x accumulation steps)")
    total_steps = config.max_steps or math.ceil(batches_per_epoch * config.epochs)
    eval_every = config.eval_steps or batches_per_epoch
    accepted = accepted_inputs(model)
    optimizer = build_optimizer(model, config)  # before unfreezing: holds all that will train
    scheduler = build_scheduler(optimizer, config.scheduler, total_steps, config.warmup_ratio)
    model, optimizer = accelerator.prepare(model, optimizer)
    checkpoints, log = run_dir / "checkpoints", RunLog(run_dir / "log.jsonl", main)

    state = LoopState()
    last = latest_checkpoint(checkpoints) if config.resume else None
    if last:
        state = LoopState(**load_checkpoint(last, accelerator.unwrap_model(model), optimizer, scheduler))
        say(f"resumed from {last} (step {state.step} of {total_steps})")

    progress = tqdm(total=total_steps, initial=state.step, disable=not (main and config.progress),
                    desc="training", unit="step", dynamic_ncols=True)
    window_start, window_examples, window_loss = time.perf_counter(), 0, 0.0
    epoch_seconds = 0.0  # training time of the current epoch, evaluation excluded
    shown = {}  # progress-bar fields: live loss and the last eval metric
    while state.step < total_steps and not state.stopped_early:
        batches = usable_batches(train_set.lengths, config, state.epoch, parts)
        for batch in batches[state.batch_in_epoch :]:
            # ---- one optimizer step over a global batch: micro-batches, then this process's share
            step_started = time.perf_counter()
            if unfreezer and (change := unfreezer.update(state.epoch, state.step)):
                say(change)
            train_mode(accelerator.unwrap_model(model))
            step_loss = 0.0
            for k in range(config.grad_accum):
                local = shard(shard(batch, config.grad_accum, k), world, rank)
                inputs = batch_inputs(train_set, local, tokenizer, accepted)
                inputs = {key: value.to(accelerator.device) for key, value in inputs.items()}
                targets = train_set.targets[local].to(accelerator.device)
                sync = k == config.grad_accum - 1
                with accelerator.no_sync(model) if not sync else nullcontext():
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
            state.step += 1
            state.batch_in_epoch += 1
            epoch_seconds += time.perf_counter() - step_started
            if state.batch_in_epoch == len(batches):
                log.write({"epoch_end": state.epoch + 1, "step": state.step, "train_seconds": round(epoch_seconds, 3)})
            # ---- bookkeeping: progress, log, evaluation and checkpoint
            window_examples += len(batch)
            window_loss += step_loss
            progress.update(1)
            shown["loss"] = f"{step_loss:.4f}"
            progress.set_postfix(shown, refresh=False)
            if state.step % config.log_steps == 0:
                elapsed = time.perf_counter() - window_start
                log.write({"step": state.step, "epoch": round(state.epoch + state.batch_in_epoch / len(batches), 4),
                           "loss": window_loss / config.log_steps, "lr": scheduler.get_last_lr()[0],
                           "examples_per_s": window_examples / elapsed})
                window_start, window_examples, window_loss = time.perf_counter(), 0, 0.0
            if state.step % eval_every == 0 or state.step == total_steps:
                eval_started = time.perf_counter()
                value = evaluate_and_checkpoint(model, optimizer, scheduler, task, eval_set, tokenizer, config,
                                                checkpoints, accelerator, state, log, say)
                shown[metric_name(config, task)] = f"{value:.4f}"
                window_start += time.perf_counter() - eval_started  # throughput counts training time only
                progress.set_postfix(shown)
            if state.step >= total_steps or state.stopped_early:
                break
        else:
            state.epoch, state.batch_in_epoch, epoch_seconds = state.epoch + 1, 0, 0.0
    progress.close()
    if config.restore_best and state.best_checkpoint and state.best_step != state.step:
        load_weights(Path(state.best_checkpoint), accelerator.unwrap_model(model))
        say(f"restored the best checkpoint (step {state.best_step}, {metric_name(config, task)} = {state.best_metric:.4f})")
    accelerator.unwrap_model(model, keep_fp32_wrapper=False)  # drop prepare's autocast: from here it runs as saved
    return state


def metric_name(config, task) -> str:
    return task.primary_metric if config.metric == "auto" else config.metric


def evaluate_and_checkpoint(model, optimizer, scheduler, task, eval_set, tokenizer, config, checkpoints,
                            accelerator, state: LoopState, log: RunLog, say) -> float:
    """Evaluate, update best/early-stopping state, write a checkpoint; returns the watched metric."""
    metrics = evaluate(accelerator.unwrap_model(model), task, eval_set, tokenizer, config, accelerator)
    name = metric_name(config, task)
    if name not in metrics:
        raise StellarError(f"--metric {name}: not a metric of this task; choose from "
                           f"{', '.join(k for k, v in metrics.items() if isinstance(v, float))}")
    value = metrics[name]
    better = state.best_metric is None or (value < state.best_metric if name in LOWER_IS_BETTER
                                           else value > state.best_metric)
    if better:
        state.best_metric, state.best_step, state.stale_evals = value, state.step, 0
    else:
        state.stale_evals += 1
        state.stopped_early = config.patience is not None and state.stale_evals >= config.patience
    path = checkpoints / f"step-{state.step:08d}"
    if better:
        state.best_checkpoint = str(path)
    log.write({"step": state.step, "eval": {k: v for k, v in metrics.items() if isinstance(v, float)}})
    say(f"step {state.step}: {name} = {value:.4f}" + (" (best)" if better else "")
        + (f"; early stop after {config.patience} evaluations without improvement" if state.stopped_early else ""))
    if accelerator.is_main_process:
        saved = save_checkpoint(checkpoints, state.step, accelerator.unwrap_model(model), optimizer, scheduler,
                                asdict(state))
        prune_checkpoints(checkpoints, {saved, Path(state.best_checkpoint)})
    accelerator.wait_for_everyone()
    return value


def evaluate(model, task, encoded, tokenizer, config, accelerator, tune: bool = True) -> dict:
    logits = compute_logits(model, encoded, tokenizer, batch_size=2 * config.batch_size,
                            device=accelerator.device, autocast=accelerator.autocast)
    return task.metrics(logits, encoded, tune=tune)
