"""Run a model over encoded examples in length-sorted batches and return outputs in input order."""

from __future__ import annotations

import contextlib

import torch

from ..data.encoded import Encoded
from ..models.inputs import accepted_inputs, forward_logits
from .batches import batch_inputs, inference_batches

TOKENS_PER_EXAMPLE = 32  # a batch of batch_size examples holds at most 32 x batch_size tokens


def compute_logits(model, encoded: Encoded, tokenizer, batch_size: int = 64, device=None,
                   autocast=contextlib.nullcontext) -> torch.Tensor:
    """The model's outputs per batch, in eval mode and without gradients; one row per example."""
    device = device or next(model.parameters()).device
    accepted = accepted_inputs(model)
    was_training = model.training
    model.eval()
    pieces: dict[int, torch.Tensor] = {}
    with torch.inference_mode(), autocast():
        for batch in inference_batches(encoded.lengths, batch_size, TOKENS_PER_EXAMPLE * batch_size):
            inputs = batch_inputs(encoded, batch, tokenizer, accepted)
            outputs = forward_logits(model, {k: v.to(device) for k, v in inputs.items()}).float().cpu()
            pieces.update(zip(batch, outputs))
    model.train(was_training)
    # padded to the longest: token tasks return one row per token, and batches differ in length
    return torch.nn.utils.rnn.pad_sequence([pieces[i] for i in range(len(encoded))], batch_first=True)
