"""Tokenized examples as every task hands them to batching, training and inference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .columnar import FeatureRows


@dataclass
class Encoded:
    """Tokenized examples: one dict of token-id lists per example, their lengths, and targets."""

    features: Sequence[dict]  # a list, or rows of a stored table (columnar.FeatureRows)
    lengths: Sequence[int]
    targets: torch.Tensor | None
    truncated: int  # how many examples were cut at max_length
    windows: list | None = None  # token tasks: which sentence and words each encoded window holds
    split: int = 0  # token and span tasks: examples longer than max_length, split into several windows
    target_names: list[str] | None = None  # token tasks: the name of each target id (gold tags the model lacks last)
    source: object = None  # span tasks: the encoded Examples (contexts and gold answers, for scoring)
    text_of: Sequence[int] | None = None  # texts read in windows (--long-texts windows): the text of each feature
    weights: torch.Tensor | None = None  # each feature's weight in the loss (a text's windows share one)
    window_counts: list[int] | None = None  # joined again per text (`Task.per_text`): the windows each took
    # builds the model inputs of some examples (by index) when padding the features is not enough,
    # e.g. pretraining draws new masks per batch; None: training/batching.collate
    collator: Callable[[list[int]], dict] | None = None
    note: str | None = None  # said in the log: where its token ids are stored on disk, or that they were reused

    def __len__(self) -> int:
        return len(self.features)


@dataclass
class ReadTexts:
    """Token ids of texts as a task's model reads them: one feature per window (one per text unless windows)."""

    features: Sequence[dict]  # a list, or rows of a stored table (columnar.FeatureRows)
    text_of: Sequence[int] | None  # windows: the text each feature belongs to; None: one feature per text (also
    # when no text was long enough to be split: then there is nothing to join, and no array per text to hold)
    cut: int  # texts longer than max_length (cut, or split into windows)
    lengths: Sequence[int] | None = None  # tokens of each feature (joined and stored token ids)
    note: str | None = None  # where the token ids are stored, or that they were reused (said in the log)
    texts: int | None = None  # how many texts the features are of, where not one per feature or per text_of
    # entry (pretraining packs several documents into a block): what a progress bar counts

    @property
    def text_count(self) -> int:
        if self.texts is not None:
            return self.texts
        return len(set(self.text_of)) if self.text_of is not None else len(self.features)

    @property
    def weights(self) -> torch.Tensor | None:
        """1 / (the windows of its text) for each window: every text counts once in the loss."""
        if self.text_of is None:
            return None
        index = torch.as_tensor(self.text_of)
        return 1.0 / torch.bincount(index).float()[index]

    @classmethod
    def joined(cls, parts) -> "ReadTexts":
        """The token ids of consecutive chunks of texts as one, in memory (each part's `text_of` counts from
        its own first text: `start` of each part is added)."""
        features, text_of, cut, windows = [], [], 0, False
        for start, part in parts:
            features += part.features
            cut += part.cut
            if part.text_of is not None:
                windows = True
                text_of += [start + t for t in part.text_of]
        return cls(features, text_of if windows and cut else None, cut, [len(f["input_ids"]) for f in features])


class FeatureTargets:
    """Targets kept in the features, under `name` (a list per feature: a tag per token, an answer's first and
    last token), made a tensor as a batch is taken: a stored set's targets stay on disk."""

    def __init__(self, features: Sequence[dict], name: str, padding: int):
        self.features, self.name, self.padding = features, name, padding

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, rows) -> torch.Tensor:
        """The targets of one feature, or of several (an array of rows) padded to the longest with `padding`."""
        if isinstance(rows, (int, np.integer)):
            return torch.tensor(self.features[int(rows)][self.name])
        targets = [self.features[int(row)][self.name] for row in rows]
        padded = torch.full((len(targets), max(map(len, targets), default=0)), self.padding)
        for row, values in enumerate(targets):
            padded[row, : len(values)] = torch.tensor(values)
        return padded

    def all(self) -> torch.Tensor:
        """Every feature's targets (an evaluation set's)."""
        return self[range(len(self))]

    def flat(self) -> np.ndarray:
        """Every value of every feature's targets, one after the other; of stored features, read in Arrow."""
        if isinstance(self.features, FeatureRows):
            return self.features.flat(self.name)
        return np.fromiter((value for feature in self.features for value in feature[self.name]), dtype=np.int64)


class FeatureWindows(Sequence):
    """What each window holds (which example, which of its words or characters), made from the window's
    features by `make(example, features)` as it is asked for: ten million stored windows cost no object each."""

    def __init__(self, read: ReadTexts, make: Callable[[int, dict], object]):
        self.features, self.text_of, self.make = read.features, read.text_of, make

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, row: int):
        if not -len(self) <= row < len(self):
            raise IndexError(row)
        row %= len(self)
        return self.make(row if self.text_of is None else int(self.text_of[row]), self.features[row])
