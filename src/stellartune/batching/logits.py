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
    batches: list[tuple[list[int], torch.Tensor]] = []
    with torch.inference_mode(), autocast():
        for batch in inference_batches(encoded.lengths, batch_size, TOKENS_PER_EXAMPLE * batch_size):
            inputs = batch_inputs(encoded, batch, tokenizer, accepted)
            batches.append((batch, forward_logits(model, {k: v.to(device) for k, v in inputs.items()}).float().cpu()))
    model.train(was_training)
    return in_input_order(batches, len(encoded))


def in_input_order(batches: list[tuple[list[int], torch.Tensor]], count: int) -> torch.Tensor:
    """The batches' output rows, each at its example's index; padded with zeros to the longest, as token tasks
    return one row per token and batches differ in length. One tensor per batch, not per example: ten million
    examples would cost gigabytes of tensor objects."""
    if not batches:
        return torch.zeros(0)
    longest = [max(sizes) for sizes in zip(*(outputs.shape[1:] for _, outputs in batches))]
    logits = torch.zeros(count, *longest)
    for batch, outputs in batches:
        logits[(torch.as_tensor(batch), *(slice(0, size) for size in outputs.shape[1:]))] = outputs
    return logits
