"""Sequence classification: single-label, sentence pairs, multi-label and regression.

Sentence pairs are single-label (or regression) examples with a second text; the tokenizer
joins them as [CLS] a [SEP] b [SEP] with token type ids. One class covers all four, since they
differ only in how labels become targets and logits become scores.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.encoded import Encoded
from ..data.examples import Examples, build_examples, label_kind_of
from ..errors import StellarError, some
from ..evaluation.metrics import (
    best_threshold,
    multi_label_metrics,
    regression_metrics,
    single_label_metrics,
)
from ..evaluation.sections import Section
from ..evaluation.views import multi_label_sections, regression_sections, single_label_sections
from ..models.quiet import quiet_transformers
from .base import Task

PRIMARY_METRIC = {"classification": "accuracy", "multi-label": "micro_f1", "regression": "pearson"}
LABEL_KINDS = {"classification": "single", "multi-label": "list", "regression": "number"}  # how cells parse
PROBLEM_TYPES = {"classification": "single_label_classification", "multi-label": "multi_label_classification",
                 "regression": "regression"}

TOKENIZE_CHUNK = 512  # texts per tokenizer call


class ClassificationTask(Task):
    name = "classification"
    model_kind = "sequence"  # one output per text: AutoModelForSequenceClassification
    lower_is_better = frozenset({"mse"})

    def __init__(self, problem: str, labels: list[str], threshold: float = 0.5,
                 class_weights: list[float] | None = None):
        self.problem = problem  # classification | multi-label | regression
        self.labels = labels
        self.threshold = threshold
        self.class_weights = class_weights
        self.primary_metric = PRIMARY_METRIC[problem]

    # --- setup ---------------------------------------------------------------------------
    @classmethod
    def from_examples(cls, problem: str, train: Examples, config=None) -> "ClassificationTask":
        class_weights = config.class_weights if config is not None else "none"
        if problem == "regression":
            return cls(problem, ["score"])
        flat = [label for labels in train.labels for label in labels] if problem == "multi-label" else train.labels
        names = sorted(set(flat), key=lambda v: (not v.lstrip("-").isdigit(), int(v) if v.lstrip("-").isdigit() else 0, v))
        if len(names) < 2:
            raise StellarError(f'{train.positions[0].rsplit(", ", 1)[0]}, column "{train.columns.label}": every '
                               f"training example has the label {names[0]!r}; a classifier needs at least two classes")
        weights = None
        if class_weights == "balanced" and problem == "classification":
            counts = np.array([flat.count(n) for n in names], dtype=float)
            weights = (len(flat) / (len(names) * counts)).tolist()
        return cls(problem, names, class_weights=weights)

    @classmethod
    def build_examples(cls, problem: str, table, columns, delimiter: str = ",", need_label: bool = True) -> Examples:
        return build_examples(table, columns, LABEL_KINDS.get(problem, "single"), delimiter, need_label)

    @classmethod
    def problem_from_labels(cls, table, label_column: str, delimiter: str) -> tuple[str, str]:
        """classification, multi-label or regression, as the label cells look (--task auto), and why."""
        kind, why = label_kind_of(table, label_column, delimiter)
        return next(problem for problem, problem_kind in LABEL_KINDS.items() if problem_kind == kind), why

    @classmethod
    def stratified_split(cls, problem: str) -> bool:
        return problem == "classification"

    @property
    def prediction_fields(self) -> dict[str, object]:
        if self.problem == "regression":
            return {"score": float}
        if self.problem == "multi-label":
            return {"labels": list[str], "scores": dict[str, float]}
        return {"label": str, "score": float, "scores": dict[str, float]}

    def report_sections(self, records: list[dict]) -> list[Section]:
        if self.problem == "regression":
            return regression_sections(records)
        if self.problem == "multi-label":
            return multi_label_sections(records, self.labels, self.threshold)
        return single_label_sections(records, self.labels)

    @property
    def problem_type(self) -> str:
        return PROBLEM_TYPES[self.problem]

    @classmethod
    def label_names(cls, label) -> set[str]:
        return {label} if isinstance(label, str) else set(label) if isinstance(label, list) else set()

    def check_known_labels(self, examples: Examples) -> None:
        """Eval labels must have been seen in training: the model has no output for new ones."""
        if self.problem == "regression" or examples.labels is None:
            return None
        known = set(self.labels)
        for position, value in zip(examples.positions, examples.labels):
            for label in self.label_names(value) - known:
                raise StellarError(f'{position}, column "{examples.columns.label}": label {label!r} never seen '
                                   f"in training (training labels: {some(self.labels)})")
        return None

    # --- data ----------------------------------------------------------------------------
    def encode(self, examples: Examples, tokenizer, max_length: int) -> Encoded:
        features, truncated = tokenize(tokenizer, examples.texts, examples.pairs, max_length)
        return Encoded(features, [len(f["input_ids"]) for f in features], self.known_targets(examples), truncated)

    def known_targets(self, examples: Examples) -> torch.Tensor | None:
        """Targets when every example has a label (None for unlabeled input)."""
        if examples.labels is not None and all(label is not None for label in examples.labels):
            return self.targets(examples.labels)
        return None

    def targets(self, labels: list) -> torch.Tensor:
        if self.problem == "regression":
            return torch.tensor(labels, dtype=torch.float32)
        index = {name: i for i, name in enumerate(self.labels)}
        if self.problem == "classification":
            return torch.tensor([index[label] for label in labels])
        multi_hot = torch.zeros(len(labels), len(self.labels))
        for row, names in enumerate(labels):
            multi_hot[row, [index[n] for n in names]] = 1.0
        return multi_hot

    def prior_bias(self, targets: torch.Tensor) -> torch.Tensor | None:
        """Output bias that makes the untrained model predict the training prior: log odds of each
        label (multi-label), log class frequencies (single-label) or the mean score (regression).
        Without it a new multi-label head starts at p=0.5 for every label and spends the first
        epoch learning that labels are rare, predicting only the most common one meanwhile."""
        if self.class_weights:  # the weights ask for a balanced prior instead
            return None
        if self.problem == "regression":
            return targets.float().mean().reshape(1)
        if self.problem == "multi-label":
            rate = targets.float().mean(0).clamp(1e-4, 1 - 1e-4)
            return torch.log(rate / (1 - rate))
        counts = torch.bincount(targets, minlength=len(self.labels)).float().clamp(min=1)
        return torch.log(counts / counts.sum())

    # --- training and evaluation ---------------------------------------------------------------
    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.problem == "regression":
            return F.mse_loss(logits.squeeze(-1), targets, reduction="none")
        if self.problem == "multi-label":
            return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(-1)
        weight = torch.tensor(self.class_weights, device=logits.device) if self.class_weights else None
        return F.cross_entropy(logits, targets, weight=weight, reduction="none")

    threshold_name = "the decision threshold"  # what `calibrate` tunes, for the log

    @property
    def calibrated(self) -> bool:
        return self.problem == "multi-label"

    def calibrate(self, logits: torch.Tensor, encoded: Encoded) -> None:
        """Multi-label: the decision threshold that maximises micro-F1 on these examples, kept and saved."""
        if self.problem == "multi-label":
            self.threshold = best_threshold(torch.sigmoid(logits.float().cpu()).numpy(), encoded.targets.cpu().numpy())

    def metrics(self, logits: torch.Tensor, encoded: Encoded) -> dict:
        logits, gold = logits.float().cpu(), encoded.targets.cpu().numpy()
        if self.problem == "regression":
            return regression_metrics(logits.squeeze(-1).numpy(), gold)
        if self.problem == "classification":
            return single_label_metrics(logits.argmax(-1).numpy(), gold, self.labels)
        probabilities = torch.sigmoid(logits).numpy()
        return {**multi_label_metrics((probabilities >= self.threshold).astype(int), gold.astype(int), self.labels),
                "threshold": self.threshold}

    def predictions(self, logits: torch.Tensor, encoded: Encoded | None = None, examples=None) -> list[dict]:
        logits = logits.float().cpu()
        if self.problem == "regression":
            return [{"score": float(v)} for v in logits.squeeze(-1).tolist()]
        if self.problem == "multi-label":
            probabilities = torch.sigmoid(logits).tolist()
            return [{"labels": [n for n, p in zip(self.labels, row) if p >= self.threshold],
                     "scores": dict(zip(self.labels, row))} for row in probabilities]
        probabilities = torch.softmax(logits, -1)
        best = probabilities.argmax(-1).tolist()
        return [{"label": self.labels[b], "score": row[b], "scores": dict(zip(self.labels, row))}
                for b, row in zip(best, probabilities.tolist())]

    # --- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"task": self.name, "problem": self.problem, "labels": self.labels, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: dict) -> "ClassificationTask":
        return cls(data["problem"], data["labels"], data.get("threshold", 0.5))


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
