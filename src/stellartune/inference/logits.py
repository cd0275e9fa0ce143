"""Run a model over encoded examples in length-sorted batches and return logits in input order."""

from __future__ import annotations

import contextlib

import torch

from ..models.loading import accepted_inputs, forward_logits
from ..tasks.base import Encoded
from ..training.batching import collate, inference_batches


def compute_logits(model, encoded: Encoded, tokenizer, batch_size: int = 64, device=None,
                   autocast=contextlib.nullcontext) -> torch.Tensor:
    device = device or next(model.parameters()).device
    accepted = accepted_inputs(model)
    was_training = model.training
    model.eval()
    pieces: dict[int, torch.Tensor] = {}
    with torch.inference_mode(), autocast():
        for batch in inference_batches(encoded.lengths, batch_size):
            inputs = collate([encoded.features[i] for i in batch], tokenizer, accepted)
            logits = forward_logits(model, {k: v.to(device) for k, v in inputs.items()}).float().cpu()
            pieces.update(zip(batch, logits))
    model.train(was_training)
    return torch.stack([pieces[i] for i in range(len(encoded))])
