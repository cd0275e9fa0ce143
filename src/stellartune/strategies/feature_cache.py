"""Head-only fast path: with the whole encoder frozen its outputs never change, so compute them
once, keep them on disk, and train the head on them.

What is cached is what the head reads: the pooled vector for stellartune's own heads; the first
token's hidden state (plus the pooler output where there is one) for an architecture's own
classification head, which then runs on a stand-in encoder that returns the cached vectors.
Before training, the head on cached features is checked against the full model on a few
examples; an architecture whose head reads more than that (ModernBERT with mean pooling) falls
back to running the frozen encoder.

The cache file is keyed by the model's files, the token ids of every example (so the data,
tokenizer and --max-length), the pooling and the precision: a change to any of them misses.
A frozen encoder runs in eval mode (no dropout) with or without the cache, so both give the same
model.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling

from ..atomic import atomic_file
from ..batching.logits import compute_logits
from ..data.encoded import Encoded
from ..models.heads import EncoderWithHead, pool
from ..models.inputs import forward_logits
from ..config import cache_dir
from .layers import base_encoder

CHECK_EXAMPLES, TOLERANCE = 8, 1e-4


class EncoderFeatures(nn.Module):
    """The classifier's encoder, giving what its head reads: one row per example."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier
        self.train(classifier.training)  # the classifier's mode is kept after the pass

    def get_base_model(self) -> nn.Module:
        """The classifier, whose inputs these are (`models.inputs.accepted_inputs`, as for a PEFT wrapper)."""
        return self.classifier

    def forward(self, **inputs) -> torch.Tensor:
        model = self.classifier
        if isinstance(model, EncoderWithHead):
            return pool(model.encoder(**inputs), inputs["attention_mask"], model.head_config.pooling)
        outputs = base_encoder(model)(**inputs)
        first = outputs.last_hidden_state[:, 0]
        pooled = getattr(outputs, "pooler_output", None)
        return first if pooled is None else torch.cat([first, pooled], -1)


class CachedEncoder(nn.Module):
    """Stands in for the encoder: returns the cached first-token state (and pooler output)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.hidden_size, self.features = hidden_size, None

    def forward(self, *args, **kwargs) -> BaseModelOutputWithPooling:
        first, pooled = self.features[:, : self.hidden_size], self.features[:, self.hidden_size :]
        return BaseModelOutputWithPooling(last_hidden_state=first.unsqueeze(1),
                                          pooler_output=pooled if pooled.shape[-1] else None)


class HeadOnly(nn.Module):
    """The classifier's head over cached features. Shares its parameters with the classifier, so
    training this trains the real head."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.wrapped_classifier = classifier
        self.stand_in = CachedEncoder(classifier.config.hidden_size)

    def forward(self, cached: torch.Tensor) -> torch.Tensor:
        model = self.wrapped_classifier
        if isinstance(model, EncoderWithHead):
            return model.head(cached)
        with swapped_encoder(model, self.stand_in):
            self.stand_in.features = cached
            ones = torch.ones(len(cached), 1, dtype=torch.long, device=cached.device)
            return forward_logits(model, {"input_ids": ones, "attention_mask": ones})


@contextlib.contextmanager
def swapped_encoder(model: nn.Module, stand_in: nn.Module):
    name = model.base_model_prefix
    encoder = getattr(model, name)
    setattr(model, name, stand_in)
    try:
        yield
    finally:
        setattr(model, name, encoder)


def cache_key(model_path: str, model: nn.Module, encoded: Encoded, precision: str) -> str:
    digest = hashlib.sha256()
    kind = model.head_config.pooling if isinstance(model, EncoderWithHead) else "first-token+pooler"
    digest.update(f"{Path(model_path).resolve()}|{kind}|{precision}|{type(model).__name__}".encode())
    folder = Path(model_path)
    for file in sorted(folder.iterdir()) if folder.is_dir() else []:
        stat = file.stat()
        digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for feature in encoded.features:
        for name in sorted(feature):
            digest.update(name.encode() + np.asarray(feature[name], dtype=np.int64).tobytes())
    return digest.hexdigest()[:32]


def cached_features(model, encoded: Encoded, tokenizer, model_path: str, precision: str, device, autocast,
                    say) -> torch.Tensor:
    path = cache_dir() / "features" / f"{cache_key(model_path, model, encoded, precision)}.safetensors"
    if path.exists():
        say(f"feature cache: read the encoder outputs of {len(encoded)} examples from {path}")
        return load_file(str(path))["features"]
    features = compute_logits(EncoderFeatures(model), encoded, tokenizer, device=device, autocast=autocast)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:  # a concurrent or killed run never reads half a file
        save_file({"features": features.contiguous()}, str(tmp))
    say(f"feature cache: computed the encoder outputs of {len(encoded)} examples once, saved to {path}")
    return features


def with_features(encoded: Encoded, features: torch.Tensor) -> Encoded:
    """Same examples, lengths (so the same batches) and targets, with cached features as input."""
    return replace(encoded, features=[{"cached": row} for row in features], collator=None)


def head_only_training(model, train_set: Encoded, eval_set: Encoded, tokenizer, model_path: str, precision: str,
                       device, autocast, say):
    """(HeadOnly model, cached train set, cached eval set), or None when the head cannot run on them."""
    head_only = HeadOnly(model)
    sample = Encoded(eval_set.features[:CHECK_EXAMPLES], eval_set.lengths[:CHECK_EXAMPLES], None, 0)
    expected = compute_logits(model, sample, tokenizer, device=device)
    features = compute_logits(EncoderFeatures(model), sample, tokenizer, device=device)
    got = compute_logits(head_only, with_features(sample, features), tokenizer, device=device)
    if not torch.allclose(expected, got, atol=TOLERANCE):
        say(f"feature cache: not used, the {type(model).__name__} head reads more than the cached vectors; "
            "running the frozen encoder every step instead")
        return None
    cached = [with_features(s, cached_features(model, s, tokenizer, model_path, precision, device, autocast, say))
              for s in (train_set, eval_set)]
    return head_only, *cached
