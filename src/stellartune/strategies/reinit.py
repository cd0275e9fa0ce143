"""--reinit-layers N: the top N transformer layers start from fresh weights, as in Zhang et al. 2021
("Revisiting few-sample BERT fine-tuning"): the top layers are the most specific to the pretraining
objective, and on small data a fresh start there can transfer better."""

from __future__ import annotations

from torch import nn

from ..errors import StellarError
from .layers import base_encoder, encoder_parts


def reinit_top_layers(model: nn.Module, count: int) -> None:
    """Linear weights drawn as the architecture initialises them (normal, std initializer_range), biases
    zero, norms one and zero. transformers' own `_init_weights` skips weights loaded from a checkpoint."""
    layers = encoder_parts(model).layers
    if count > len(layers):
        raise StellarError(f"--reinit-layers {count}: the model has only {len(layers)} transformer layers")
    std = getattr(base_encoder(model).config, "initializer_range", 0.02)
    for layer in layers[len(layers) - count:]:
        for module in layer.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
            if isinstance(module, (nn.Linear, nn.LayerNorm)) and module.bias is not None:
                nn.init.zeros_(module.bias)
