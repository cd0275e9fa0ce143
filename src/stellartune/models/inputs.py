"""What a model takes and gives, whatever its architecture or wrapper: accepted inputs and logits."""

from __future__ import annotations

import inspect

import torch

from .heads import EncoderWithHead


def accepted_inputs(model: torch.nn.Module) -> set[str]:
    """Tokenizer outputs the model's forward takes (DistilBERT and MPNet take no token_type_ids)."""
    model = model.get_base_model() if hasattr(model, "get_base_model") else model  # inside a PEFT wrapper
    target = model.encoder if isinstance(model, EncoderWithHead) else model
    return set(inspect.signature(target.forward).parameters)


def forward_logits(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """The model's logits; question answering's start and end logits stacked as (batch, tokens, 2)."""
    outputs = model(**batch)
    if isinstance(outputs, torch.Tensor):
        return outputs
    if getattr(outputs, "start_logits", None) is not None:
        return torch.stack([outputs.start_logits, outputs.end_logits], -1)
    return outputs.logits
