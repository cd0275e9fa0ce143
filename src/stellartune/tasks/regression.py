"""Regression: one score per text (or sentence pair, as STS-B), mean squared error."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.encoded import Encoded
from ..data.examples import Examples, as_numbers
from ..evaluation.metrics import regression_metrics
from ..evaluation.sections import Section
from ..evaluation.views import regression_sections
from .sequence import SequenceTask


class RegressionTask(SequenceTask):
    name = "regression"
    label_kind = "number"
    problem_type = "regression"
    primary_metric = "pearson"
    lower_is_better = frozenset({"mse"})
    prediction_fields = {"score": float, "windows": int}

    def __init__(self):
        self.labels = ["score"]

    @classmethod
    def from_examples(cls, train: Examples, config) -> RegressionTask:
        return cls()

    def targets(self, labels: list) -> torch.Tensor:
        return torch.from_numpy(as_numbers(labels)).float()

    def prior_bias(self, targets: torch.Tensor) -> torch.Tensor:
        """The mean training score: the untrained model predicts it."""
        return targets.float().mean().reshape(1)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(logits.float().squeeze(-1), targets, reduction="none")

    def metrics(self, logits: torch.Tensor, encoded: Encoded) -> dict:
        return regression_metrics(logits.float().cpu().squeeze(-1).numpy(), encoded.targets.cpu().numpy())

    def predictions(self, logits: torch.Tensor, encoded: Encoded, examples=None) -> list[dict]:
        return [{"score": float(v), "windows": count}
                for v, count in zip(logits.float().cpu().squeeze(-1).tolist(), encoded.window_counts)]

    def report_sections(self, records: list[dict]) -> list[Section]:
        return regression_sections(records)

    def to_dict(self) -> dict:
        return {"task": self.name, "reading": self.reading}

    @classmethod
    def from_dict(cls, data: dict) -> RegressionTask:
        return cls().with_reading(data)
