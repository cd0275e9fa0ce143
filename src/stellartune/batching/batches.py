"""Batches without static padding: length-grouped for training, length-sorted for inference.

Padding every batch to its longest member (not to max_length) and grouping similar lengths
together is where most of the speed over a default Trainer run comes from on short texts.
"""

from __future__ import annotations

import numpy as np
import torch

MEGABATCH = 50  # batches per shuffled window that is sorted by length (as transformers' LengthGroupedSampler)


def training_batches(lengths, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The epoch's batches, a pure function of (seed, epoch): a resumed run replays the same order. Arrays of
    example indices (views of one array: no Python object per example, however many there are)."""
    lengths = np.asarray(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    window = batch_size * MEGABATCH
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]  # longest first, ties in shuffled order
        batches += np.split(chunk, range(batch_size, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def inference_batches(lengths: list[int], batch_size: int, max_tokens: int) -> list[list[int]]:
    """Longest first, so similar lengths share a batch; callers restore the input order. At most
    batch_size examples and max_tokens tokens, padding included: long texts go in smaller batches,
    as their activations, not the model, set the peak memory of inference."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, start = [], 0
    while start < len(order):
        size = max(1, min(batch_size, max_tokens // max(1, lengths[order[start]])))  # the first is the longest
        batches.append(order[start : start + size])
        start += size
    return batches


def shard(batch: list[int], parts: int, index: int) -> list[int]:
    """This process's share of a global batch (or of a micro-batch)."""
    return batch[index::parts]


def collate(features: list[dict], tokenizer, accepted: set[str]) -> dict[str, torch.Tensor]:
    """Pad to the longest example with the tokenizer's own rules; drop inputs the model does not take.
    Cached encoder outputs (strategies/feature_cache.py) are stacked as they are."""
    if "cached" in features[0]:
        return {"cached": torch.stack([f["cached"] for f in features])}
    padded = tokenizer.pad([{k: v for k, v in f.items() if k in accepted} for f in features], return_tensors="pt")
    return dict(padded)


def batch_inputs(encoded, indices: list[int], tokenizer, accepted: set[str]) -> dict[str, torch.Tensor]:
    """The model inputs of some encoded examples: their own collator's, else the padded features."""
    if encoded.collator is not None:
        return encoded.collator(indices)
    return collate([encoded.features[i] for i in indices], tokenizer, accepted)
