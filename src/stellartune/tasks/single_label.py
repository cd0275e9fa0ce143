"""Single-label classification: one class per text (or sentence pair), softmax over the classes."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.encoded import Encoded
from ..data.examples import Examples, distinct_labels, label_indices
from ..evaluation.metrics import single_label_metrics
from ..evaluation.sections import Section
from ..evaluation.views import single_label_sections
from .sequence import ClassesTask


class SingleLabelTask(ClassesTask):
    name = "classification"
    label_kind = "single"
    problem_type = "single_label_classification"
    primary_metric = "accuracy"
    stratified_split = True
    few_shot = True
    options = ("class_weights", "long_texts")
    prediction_fields = {"label": str, "score": float, "scores": dict[str, float], "windows": int}

    def __init__(self, labels: list[str], class_weights: list[float] | None = None):
        self.labels = labels
        self.class_weights = class_weights

    @classmethod
    def from_examples(cls, train: Examples, config) -> SingleLabelTask:
        names = cls.class_names(distinct_labels(train.labels), train)
        weights = None
        if config.class_weights == "balanced":
            counts = np.bincount(label_indices(train.labels, names), minlength=len(names)).astype(float)
            weights = (len(train.labels) / (len(names) * counts)).tolist()
        return cls(names, class_weights=weights)

    def targets(self, labels: list) -> torch.Tensor:
        return torch.from_numpy(label_indices(labels, self.labels)).long()

    def prior_bias(self, targets: torch.Tensor) -> torch.Tensor | None:
        """Log class frequencies: the untrained model predicts the training prior (unless --class-weights asks
        for a balanced one)."""
        if self.class_weights:
            return None
        counts = torch.bincount(targets, minlength=len(self.labels)).float().clamp(min=1)
        return torch.log(counts / counts.sum())

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weight = torch.tensor(self.class_weights, device=logits.device) if self.class_weights else None
        return F.cross_entropy(logits.float(), targets, weight=weight, reduction="none")

    def metrics(self, logits: torch.Tensor, encoded: Encoded) -> dict:
        return single_label_metrics(logits.float().cpu().argmax(-1).numpy(), encoded.targets.cpu().numpy(),
                                    self.labels)

    def standard_error(self, metric: str, value: float, encoded: Encoded) -> float:
        """Accuracy is a share of the evaluated texts: its binomial standard error (2.8 points at 0.9 on 115
        texts, 0.9 on 1,000)."""
        if metric != "accuracy":
            return 0.0
        texts = len(set(encoded.text_of)) if encoded.text_of is not None else len(encoded)
        return (value * (1 - value) / texts) ** 0.5

    def predictions(self, logits: torch.Tensor, encoded: Encoded, examples=None) -> list[dict]:
        probabilities = torch.softmax(logits.float().cpu(), -1)
        best = probabilities.argmax(-1).tolist()
        return [{"label": self.labels[b], "score": row[b], "scores": dict(zip(self.labels, row)), "windows": n}
                for b, row, n in zip(best, probabilities.tolist(), encoded.window_counts)]

    def report_sections(self, records: list[dict]) -> list[Section]:
        return single_label_sections(records, self.labels)

    def to_dict(self) -> dict:
        return {"task": self.name, "labels": self.labels, "reading": self.reading}

    @classmethod
    def from_dict(cls, data: dict) -> SingleLabelTask:
        return cls(data["labels"]).with_reading(data)
