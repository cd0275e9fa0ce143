"""Discriminative learning rates: a head rate (`--head-lr`) and layer-wise decay (`--layer-lr-decay`).

The top layer (and the pooler or final norm above it) gets `--lr`, each layer below it the rate
of the one above times the decay, the embeddings the lowest. Weight decay is split as in BERT:
none on biases and normalisation weights.
"""

from __future__ import annotations

from torch import nn

from .layers import HEAD, encoder_parts, group_rank


def group_lr(group: str, num_layers: int, lr: float, head_lr: float | None, decay: float) -> float:
    if group == HEAD:
        return lr if head_lr is None else head_lr
    return lr * decay ** (group_rank(group, num_layers) - 1)


def parameter_groups(model: nn.Module, lr: float, weight_decay: float, head_lr: float | None = None,
                     layer_lr_decay: float = 1.0) -> list[dict]:
    """AdamW parameter groups, head first, embeddings last; frozen parameters are left out."""
    parts = encoder_parts(model)
    num_layers, groups = len(parts.layers), parts.group_of_parameters(model)
    buckets: dict[tuple[str, bool], dict] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        group = groups[id(parameter)]
        no_decay = parameter.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")
        bucket = buckets.setdefault((group, no_decay), {
            "name": group + (" (no decay)" if no_decay else ""), "params": [],
            "lr": group_lr(group, num_layers, lr, head_lr, layer_lr_decay),
            "weight_decay": 0.0 if no_decay else weight_decay})
        bucket["params"].append(parameter)
    return sorted(buckets.values(), key=lambda b: (group_rank(b["name"].split(" ")[0], num_layers), b["name"]))
