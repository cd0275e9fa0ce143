"""Tokenized examples as every task hands them to batching, training and inference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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
    target_names: list[str] | None = None  # token tasks: the name of each target id (gold tags the model lacks last)
    source: object = None  # span tasks: the encoded Examples (contexts and gold answers, for scoring)
    text_of: list[int] | None = None  # texts read in windows (--long-texts windows): the text of each feature
    weights: torch.Tensor | None = None  # each feature's weight in the loss (a text's windows share one)
    window_counts: list[int] | None = None  # joined again per text (`Task.per_text`): the windows each took
    # builds the model inputs of some examples (by index) when padding the features is not enough,
    # e.g. pretraining draws new masks per batch; None: training/batching.collate
    collator: Callable[[list[int]], dict] | None = None

    def __len__(self) -> int:
        return len(self.features)
