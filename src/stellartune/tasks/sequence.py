"""What the tasks with one output vector per text share: single-label classification, multi-label
classification and regression, each with or without a second text (sentence pairs). The tokenizer joins a
pair as [CLS] a [SEP] b [SEP] with token type ids; a text longer than --max-length is read as --long-texts
says (`long_texts.py`: windows by default); the tasks differ in how labels become targets and logits become
scores (`single_label.py`, `multi_label.py`, `regression.py`)."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import replace

import torch

from ..data.encoded import Encoded
from ..data.examples import Examples, all_labeled
from ..errors import StellarError, some
from .base import Task
from .long_texts import (COVERED, DEFAULT_LENGTH, LONGEST, choose_reading, fitting_length, model_limit, per_text,
                         read_texts, token_lengths)


class SequenceTask(Task):
    """A task whose examples are texts (and pairs) with one label cell each, encoded whole."""

    options = ("long_texts",)
    stored = True
    default_max_length = None  # from the training texts (`settle`)
    reading = "truncate"  # how a text longer than max_length is read (long_texts.py); saved with the model

    def settle(self, train: Examples, tokenizer, config, say):
        """--max-length auto (the length that holds most training texts whole, within the model's limit) and
        --long-texts auto (windows), said in the log."""
        lengths = token_lengths(tokenizer, train.texts, train.pairs)
        max_length = config.max_length or fitting_length(lengths, model_limit(tokenizer))
        if config.max_length is None:
            say(f"--max-length {max_length} (auto): {COVERED:.0%} of the training examples fit in "
                f"{sorted(lengths)[min(len(lengths) - 1, int(COVERED * len(lengths)))]} tokens; at least "
                f"{DEFAULT_LENGTH}, at most {min(model_limit(tokenizer), LONGEST)} (the model's limit, or {LONGEST})")
        self.reading, why = choose_reading(config.long_texts, lengths, bool(train.pairs), max_length)
        say(why)
        return replace(config, max_length=max_length)

    def encode(self, examples: Examples, tokenizer, max_length: int) -> Encoded:
        read = read_texts(tokenizer, examples, max_length, self.reading)
        targets = self.known_targets(examples)
        if read.text_of is None:
            return Encoded(read.features, read.lengths, targets, read.cut, note=read.note)
        return Encoded(read.features, read.lengths, None if targets is None else targets[read.text_of], 0,
                       split=read.cut, text_of=read.text_of, weights=read.weights, note=read.note)

    def per_text(self, logits: torch.Tensor, encoded: Encoded) -> tuple[torch.Tensor, Encoded]:
        """A text read in windows: the mean of its windows' logits."""
        logits, targets, counts = per_text(logits, encoded.targets, encoded.text_of)
        return logits, Encoded([], [], targets, encoded.truncated, split=encoded.split, window_counts=counts)

    def with_reading(self, saved: dict):
        """This task reading long texts as the saved model did (models saved before --long-texts: truncate)."""
        self.reading = saved.get("reading", "truncate")
        return self

    def known_targets(self, examples: Examples) -> torch.Tensor | None:
        """Targets when every example has a label (None for unlabeled input)."""
        if all_labeled(examples.labels):
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
