"""Multi-label classification: any number of classes per text, one sigmoid per class, and a decision
threshold chosen on calibration data (never on the data it is scored on)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.encoded import Encoded
from ..data.examples import Examples, distinct_labels
from ..evaluation.metrics import best_threshold, multi_label_metrics
from ..evaluation.sections import Section
from ..evaluation.views import multi_label_sections
from .sequence import ClassesTask


class MultiLabelTask(ClassesTask):
    name = "multi-label"
    label_kind = "list"
    problem_type = "multi_label_classification"
    primary_metric = "micro_f1"
    threshold_name = "the decision threshold"
    prediction_fields = {"labels": list[str], "scores": dict[str, float], "windows": int}

    def __init__(self, labels: list[str], threshold: float = 0.5):
        self.labels = labels
        self.threshold = threshold

    @classmethod
    def from_examples(cls, train: Examples, config) -> MultiLabelTask:
        return cls(cls.class_names([label for labels in distinct_labels(train.labels) for label in labels], train))

    def targets(self, labels: list) -> torch.Tensor:
        index = {name: i for i, name in enumerate(self.labels)}
        multi_hot = torch.zeros(len(labels), len(self.labels))
        for row, names in enumerate(labels):
            multi_hot[row, [index[n] for n in names]] = 1.0
        return multi_hot

    def prior_bias(self, targets: torch.Tensor) -> torch.Tensor:
        """The log odds of each label: without it a new head starts at p=0.5 for every label and spends the
        first epoch learning that labels are rare, predicting only the most common one meanwhile."""
        rate = targets.float().mean(0).clamp(1e-4, 1 - 1e-4)
        return torch.log(rate / (1 - rate))

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), targets, reduction="none").mean(-1)

    @property
    def calibrated(self) -> bool:
        return True

    def calibrate(self, logits: torch.Tensor, encoded: Encoded) -> None:
        """The decision threshold that maximises micro-F1 on these examples, kept and saved."""
        self.threshold = best_threshold(torch.sigmoid(logits.float().cpu()).numpy(), encoded.targets.cpu().numpy())

    def metrics(self, logits: torch.Tensor, encoded: Encoded) -> dict:
        chosen = (torch.sigmoid(logits.float().cpu()).numpy() >= self.threshold).astype(int)
        return {**multi_label_metrics(chosen, encoded.targets.cpu().numpy().astype(int), self.labels),
                "threshold": self.threshold}

    def predictions(self, logits: torch.Tensor, encoded: Encoded, examples=None) -> list[dict]:
        return [{"labels": [n for n, p in zip(self.labels, row) if p >= self.threshold],
                 "scores": dict(zip(self.labels, row)), "windows": count}
                for row, count in zip(torch.sigmoid(logits.float().cpu()).tolist(), encoded.window_counts)]

    def report_sections(self, records: list[dict]) -> list[Section]:
        return multi_label_sections(records, self.labels, self.threshold)

    def to_dict(self) -> dict:
        return {"task": self.name, "labels": self.labels, "threshold": self.threshold, "reading": self.reading}

    @classmethod
    def from_dict(cls, data: dict) -> MultiLabelTask:
        return cls(data["labels"], data.get("threshold", 0.5)).with_reading(data)
