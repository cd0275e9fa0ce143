"""Inference: batched logits and the `FineTunedModel` that predicts, evaluates and saves."""

from ..batching.logits import compute_logits
from .predictor import FineTunedModel

__all__ = ["compute_logits", "FineTunedModel"]
