"""Freezing (`--freeze`) and gradual unfreezing (`--unfreeze gradual`, as in ULMFiT)."""

from __future__ import annotations

from torch import nn

from ..errors import StellarError
from .layers import EMBEDDINGS, HEAD, base_encoder, encoder_parts, group_rank


def frozen_groups(mode: str, num_layers: int) -> set[str]:
    """The parameter groups a --freeze mode keeps fixed (word-embeddings: a part of a group, see apply_freeze)."""
    if mode in ("none", "word-embeddings"):
        return set()
    if mode == "embeddings":
        return {EMBEDDINGS}
    if mode == "encoder":
        return {g for g in all_groups(num_layers) if g != HEAD}
    count = int(mode.split(":")[1])
    if count > num_layers:
        raise StellarError(f"--freeze {mode}: the model has only {num_layers} transformer layers")
    return {EMBEDDINGS} | {f"layer.{i}" for i in range(count)}


def all_groups(num_layers: int) -> list[str]:
    """Every group, from the top (head) down to the embeddings."""
    groups = [HEAD, "top", *(f"layer.{i}" for i in range(num_layers)), EMBEDDINGS]
    return sorted(groups, key=lambda g: group_rank(g, num_layers))


def apply_freeze(model: nn.Module, mode: str) -> None:
    if mode == "word-embeddings":  # about half of a small model's weights, and of its optimizer state
        base_encoder(model).get_input_embeddings().weight.requires_grad_(False)
        return
    parts = encoder_parts(model)
    frozen = frozen_groups(mode, len(parts.layers))
    groups = parts.group_of_parameters(model)
    for parameter in model.parameters():
        if groups[id(parameter)] in frozen:
            parameter.requires_grad_(False)


class GradualUnfreezing:
    """Stage k trains the head plus the top k layer groups (the pooler and final norm join with
    the last layer, the embeddings come last). Parameters frozen by --freeze stay frozen.

    The optimizer is built once over every parameter that will ever train; one not yet unfrozen
    has no gradient, so AdamW skips it (no update, no decay, no state) and the schedule runs on
    unchanged. The stage is a pure function of (epoch, step), so a resumed run lands on it.
    """

    def __init__(self, model: nn.Module, every_steps: int | None):
        parts = encoder_parts(model)
        self.num_layers, self.every_steps = len(parts.layers), every_steps
        groups = parts.group_of_parameters(model)
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.rank = {id(p): group_rank(groups[id(p)], self.num_layers) for p in self.trainable}
        self.stage = None

    def stage_at(self, epoch: int, step: int) -> int:
        return step // self.every_steps if self.every_steps else epoch

    def update(self, epoch: int, step: int) -> str | None:
        """Set requires_grad for this point of training; returns a log line when the stage changes."""
        stage = self.stage_at(epoch, step)
        if stage == self.stage:
            return None
        self.stage = stage
        for parameter in self.trainable:  # the head (rank 0) always trains; rank r joins at stage r
            parameter.requires_grad_(self.rank[id(parameter)] <= stage)
        return f"gradual unfreezing, step {step}: {self.describe(stage)}"

    def describe(self, stage: int) -> str:
        if stage == 0:
            return "training the head only"
        if stage > self.num_layers:  # the embeddings (rank num_layers + 1) joined
            return "training everything"
        return f"training the head and the top {stage} layer(s)"


def train_mode(model: nn.Module) -> None:
    """Training mode, except that an encoder with nothing to train runs without dropout: its
    outputs are then fixed features (and equal to the cached ones of the head-only fast path)."""
    model.train()
    encoder = base_encoder(model)
    if not any(p.requires_grad for p in encoder.parameters()):
        encoder.eval()


def gradual_unfreezing(model: nn.Module, config) -> GradualUnfreezing | None:
    """The unfreezing schedule --unfreeze gradual asks for (every --unfreeze-every steps, else every epoch)."""
    return GradualUnfreezing(model, config.unfreeze_every) if config.unfreeze == "gradual" else None
