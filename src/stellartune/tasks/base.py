"""The task interface: the only place that knows what labels mean.

The engine, CLI and API call these methods and never branch on the task. A task turns
examples into token ids and targets, logits into a loss, metrics and user-facing predictions,
and saves what it needs (label names, threshold, ...) with the model as `stellartune.json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch


@dataclass
class Encoded:
    """Tokenized examples: one dict of token-id lists per example, their lengths, and targets."""

    features: list[dict]
    lengths: list[int]
    targets: torch.Tensor | None
    truncated: int  # how many examples were cut at max_length
    windows: list | None = None  # token tasks: which sentence and words each encoded window holds
    split: int = 0  # token and span tasks: examples longer than max_length, split into several windows
    source: object = None  # span tasks: the encoded Examples (contexts and gold answers, for scoring)
    # builds the model inputs of some examples (by index) when padding the features is not enough,
    # e.g. pretraining draws new masks per batch; None: training/batching.collate
    collator: Callable[[list[int]], dict] | None = None

    def __len__(self) -> int:
        return len(self.features)


class Task(Protocol):
    name: str
    primary_metric: str  # what "better" means for best checkpoint and early stopping

    def encode(self, examples, tokenizer, max_length: int) -> Encoded: ...

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """One loss value per example (the engine averages over the global batch)."""

    def metrics(self, logits: torch.Tensor, encoded: Encoded, tune: bool = False) -> dict: ...

    def predictions(self, logits: torch.Tensor, encoded: Encoded, examples) -> list[dict]:
        """One dict per example (not per encoded window) for the user."""

    def to_dict(self) -> dict: ...
