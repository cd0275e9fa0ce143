"""A task written outside stellartune, as a user or another package would: ratings on an ordered scale
(0 < 1 < ... < 5), learned as "is the rating above k?" for each step of the scale (CORAL-style cumulative
logits), predicted as the number of steps passed. It subclasses the sequence tasks' encoding (and saves how
it reads long texts) and nothing else; `tests/test_task_plugin.py` registers it and trains, predicts, serves and exports it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stellartune.tasks.sequence import SequenceTask


class OrdinalRatingTask(SequenceTask):
    name = "ordinal-rating"
    primary_metric = "mae"
    lower_is_better = frozenset({"mae"})
    problem_type = "multi_label_classification"  # one sigmoid per step of the scale
    prediction_fields = {"rating": str, "expected": float}

    def __init__(self, scale: list[str]):
        self.scale = scale
        self.labels = [f"above {value}" for value in scale[:-1]]

    @classmethod
    def from_examples(cls, train, config) -> OrdinalRatingTask:
        return cls(sorted(set(train.labels), key=float))

    def targets(self, labels: list) -> torch.Tensor:
        ranks = torch.tensor([self.scale.index(label) for label in labels])
        return (ranks[:, None] > torch.arange(len(self.labels))[None, :]).float()

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), targets, reduction="none").mean(-1)

    def ranks(self, logits: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(logits.float().cpu()) > 0.5).sum(-1)

    def metrics(self, logits: torch.Tensor, encoded) -> dict:
        predicted, gold = self.ranks(logits), encoded.targets.cpu().sum(-1)
        return {"mae": (predicted - gold).abs().float().mean().item(),
                "accuracy": (predicted == gold).float().mean().item()}

    def predictions(self, logits: torch.Tensor, encoded=None, examples=None) -> list[dict]:
        above = torch.sigmoid(logits.float().cpu())
        return [{"rating": self.scale[int(rank)], "expected": float(row.sum())}
                for rank, row in zip(self.ranks(logits), above)]

    def to_dict(self) -> dict:
        return {"task": self.name, "scale": self.scale, "reading": self.reading}  # how it reads long texts

    @classmethod
    def from_dict(cls, data: dict) -> OrdinalRatingTask:
        return cls(data["scale"]).with_reading(data)
