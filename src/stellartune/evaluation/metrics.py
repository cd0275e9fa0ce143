"""Metrics for each kind of label, computed with scikit-learn and scipy.

Both are imported inside the functions: prediction alone never loads them (nor pandas, which
scikit-learn pulls in), about 100 MB of resident memory.
"""

from __future__ import annotations

import numpy as np


def single_label_metrics(predicted: np.ndarray, gold: np.ndarray, names: list[str]) -> dict:
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    ids = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=ids, zero_division=0)
    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(f1_score(gold, predicted, labels=ids, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(gold, predicted, labels=ids, average="micro", zero_division=0)),
        "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for name, p, r, f, s in zip(names, precision, recall, f1, support)},
        "confusion_matrix": confusion_matrix(gold, predicted, labels=ids).tolist(),
    }


def multi_label_metrics(predicted: np.ndarray, gold: np.ndarray, names: list[str]) -> dict:
    """`predicted` and `gold` are 0/1 matrices (examples x labels)."""
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        precision_recall_fscore_support,
    )

    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, zero_division=0)
    return {
        "micro_f1": float(f1_score(gold, predicted, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(gold, predicted, average="macro", zero_division=0)),
        "subset_accuracy": float(accuracy_score(gold, predicted)),
        "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for name, p, r, f, s in zip(names, precision, recall, f1, support)},
    }


def regression_metrics(predicted: np.ndarray, gold: np.ndarray) -> dict:
    from scipy.stats import pearsonr, spearmanr

    constant = np.allclose(predicted, predicted[0]) or np.allclose(gold, gold[0])
    return {
        "pearson": 0.0 if constant else float(pearsonr(predicted, gold)[0]),
        "spearman": 0.0 if constant else float(spearmanr(predicted, gold)[0]),
        "mse": float(np.mean((predicted - gold) ** 2)),
    }


def best_threshold(probabilities: np.ndarray, gold: np.ndarray) -> float:
    """The decision threshold (one for all labels) with the highest micro-F1 on these examples."""
    from sklearn.metrics import f1_score

    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    scores = [f1_score(gold, probabilities >= t, average="micro", zero_division=0) for t in grid]
    return float(grid[int(np.argmax(scores))])


def entity_metrics(predicted: list[list[str]], gold: list[list[str]]) -> dict:
    """Entity-level scores with seqeval (conlleval semantics by default, and strict IOB2), plus
    word accuracy. `predicted` and `gold` are BIO tag sequences, one per sentence."""
    from seqeval.metrics import classification_report
    from seqeval.metrics import f1_score as entity_f1
    from seqeval.scheme import IOB2

    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    micro = report["micro avg"]
    words = [(p, g) for ps, gs in zip(predicted, gold) for p, g in zip(ps, gs)]
    return {
        "f1": float(micro["f1-score"]), "precision": float(micro["precision"]), "recall": float(micro["recall"]),
        "strict_f1": float(entity_f1(gold, predicted, mode="strict", scheme=IOB2, zero_division=0)),
        "word_accuracy": sum(p == g for p, g in words) / max(len(words), 1),
        "per_class": {kind: {"precision": float(v["precision"]), "recall": float(v["recall"]),
                             "f1": float(v["f1-score"]), "support": int(v["support"])}
                      for kind, v in report.items() if not kind.endswith(" avg")},
    }
