"""Transfer strategies, as functions over a model: what trains, at which learning rate, how.

- freezing.py: --freeze none|embeddings|layers:N|encoder, --unfreeze gradual
- learning_rates.py: --head-lr, --layer-lr-decay (AdamW parameter groups)
- feature_cache.py: head-only training on cached encoder outputs when the encoder is frozen
- peft.py: --peft lora|prompt|prefix through the PEFT library
- reinit.py: --reinit-layers N, the top layers from fresh weights
- layers.py: where embeddings, layers and head are, for any architecture
"""

from __future__ import annotations

from torch import nn

from .freezing import GradualUnfreezing, apply_freeze, gradual_unfreezing, train_mode
from .peft import apply_peft
from .reinit import reinit_top_layers

STRATEGY_SETTINGS = ("freeze", "unfreeze", "unfreeze_every", "head_lr", "layer_lr_decay", "reinit_layers", "peft",
                     "lora_r", "lora_alpha", "lora_dropout", "lora_targets", "prompt_tokens", "merge")


def apply_strategy(model: nn.Module, config) -> nn.Module:
    """Re-initialise the top layers --reinit-layers names; freeze what --freeze names, or wrap the model for
    --peft; returns the model to train."""
    reinit_top_layers(model, config.reinit_layers)
    if config.peft != "none":
        return apply_peft(model, config)
    apply_freeze(model, config.freeze)
    return model


def strategy_record(config) -> dict:
    """The strategy settings, saved with the model (stellartune.json) and in the model card."""
    return {name: getattr(config, name) for name in STRATEGY_SETTINGS}


def describe_strategy(config) -> str:
    if config.peft == "lora":
        parts = [f"LoRA (r={config.lora_r}, alpha={config.lora_alpha:g}) and the head"]
    elif config.peft != "none":
        parts = [f"{config.peft} tuning ({config.prompt_tokens} virtual tokens) and the head"]
    else:
        parts = [{"none": "full fine-tuning", "word-embeddings": "full fine-tuning, word embeddings fixed",
                  "embeddings": "embeddings frozen",
                  "encoder": "encoder frozen, head only"}.get(config.freeze, f"frozen: {config.freeze}")]
    if config.unfreeze == "gradual":
        parts.append(f"gradual unfreezing every {config.unfreeze_every or 'epoch'}"
                     + (" steps" if config.unfreeze_every else ""))
    if config.layer_lr_decay != 1:
        parts.append(f"layer-wise lr decay {config.layer_lr_decay:g}")
    if config.reinit_layers:
        parts.append(f"top {config.reinit_layers} layer(s) re-initialised")
    if config.head_lr is not None:
        parts.append(f"head lr {config.head_lr:g}")
    return ", ".join(parts)


__all__ = ["GradualUnfreezing", "apply_strategy", "gradual_unfreezing", "describe_strategy", "strategy_record", "train_mode"]
