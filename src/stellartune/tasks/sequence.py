"""What the tasks with one output vector per text share: single-label classification, multi-label
classification and regression, each with or without a second text (sentence pairs). The tokenizer joins a
pair as [CLS] a [SEP] b [SEP] with token type ids; the tasks differ in how labels become targets and
logits become scores (`single_label.py`, `multi_label.py`, `regression.py`)."""

from __future__ import annotations

from abc import abstractmethod

import torch

from ..data.encoded import Encoded
from ..data.examples import Examples
from ..errors import StellarError, some
from ..models.quiet import quiet_transformers
from .base import Task

TOKENIZE_CHUNK = 512  # texts per tokenizer call


class SequenceTask(Task):
    """A task whose examples are texts (and pairs) with one label cell each, encoded whole."""

    def encode(self, examples: Examples, tokenizer, max_length: int) -> Encoded:
        features, truncated = tokenize(tokenizer, examples.texts, examples.pairs, max_length)
        return Encoded(features, [len(f["input_ids"]) for f in features], self.known_targets(examples), truncated)

    def known_targets(self, examples: Examples) -> torch.Tensor | None:
        """Targets when every example has a label (None for unlabeled input)."""
        if examples.labels is not None and all(label is not None for label in examples.labels):
            return self.targets(examples.labels)
        return None

    @abstractmethod
    def targets(self, labels: list) -> torch.Tensor:
        """Class ids, multi-hot rows or scores, as the task's loss takes them."""


class ClassesTask(SequenceTask):
    """Sequence tasks over named classes (single- and multi-label): labels are the names seen in training."""

    @staticmethod
    def class_names(flat: list[str], train: Examples) -> list[str]:
        """The classes in training order: numbers by value first, then names."""
        names = sorted(set(flat), key=lambda v: (not v.lstrip("-").isdigit(), int(v) if v.lstrip("-").isdigit() else 0, v))
        if len(names) < 2:
            raise StellarError(f'{train.positions[0].rsplit(", ", 1)[0]}, column "{train.columns.label}": every '
                               f"training example has the label {names[0]!r}; a classifier needs at least two classes")
        return names

    @classmethod
    def label_names(cls, label) -> set[str]:
        return {label} if isinstance(label, str) else set(label) if isinstance(label, list) else set()

    def check_known_labels(self, examples: Examples) -> None:
        """Eval labels must have been seen in training: the model has no output for new ones."""
        if examples.labels is None:
            return None
        known = set(self.labels)
        for position, value in zip(examples.positions, examples.labels):
            for label in self.label_names(value) - known:
                raise StellarError(f'{position}, column "{examples.columns.label}": label {label!r} never seen '
                                   f"in training (training labels: {some(self.labels)})")
        return None


def tokenize(tokenizer, texts: list[str], pairs: list[str] | None, max_length: int) -> tuple[list[dict], int]:
    """Batched fast tokenization; counts the examples longer than max_length before cutting them.
    In chunks: the untruncated encodings of long documents are large and only one chunk's are held."""
    features, truncated = [], 0
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        part = slice(start, start + TOKENIZE_CHUNK)
        chunk_features, chunk_truncated = tokenize_chunk(tokenizer, texts[part], pairs[part] if pairs else None,
                                                         max_length)
        features += chunk_features
        truncated += chunk_truncated
    return features, truncated


def tokenize_chunk(tokenizer, texts: list[str], pairs: list[str] | None, max_length: int) -> tuple[list[dict], int]:
    with quiet_transformers():  # hides "longer than the model's maximum": we count and report instead
        full = tokenizer(texts, pairs, truncation=False)
    long = [i for i, ids in enumerate(full["input_ids"]) if len(ids) > max_length]
    keys = list(full.keys())
    features = [{k: full[k][i] for k in keys} for i in range(len(texts))]
    if long:
        cut = tokenizer([texts[i] for i in long], [pairs[i] for i in long] if pairs else None,
                        truncation=True, max_length=max_length)
        for j, i in enumerate(long):
            features[i] = {k: cut[k][j] for k in keys}
    return features, len(long)
