"""AdamW with weight decay only where it belongs, and the warmup-then-decay schedule."""

from __future__ import annotations

import torch
from transformers import get_scheduler


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Biases and normalisation weights get no decay (as in BERT); frozen parameters are left out."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        skip = parameter.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")
        (no_decay if skip else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parameter_groups(model, weight_decay), lr=lr, foreach=True)


def build_scheduler(optimizer, kind: str, total_steps: int, warmup_ratio: float):
    name = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[kind]
    return get_scheduler(name, optimizer, num_warmup_steps=int(total_steps * warmup_ratio),
                         num_training_steps=total_steps)
