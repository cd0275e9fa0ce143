"""Exact Match and F1 as the official SQuAD evaluation script (v1.1 and v2.0) defines them.

Answers are normalised (lowercase, punctuation and the articles a/an/the removed, whitespace
collapsed) before comparing; each prediction gets the best score over its gold answers. An
unanswerable question (no gold answers, SQuAD v2) scores 1 only for the empty prediction.
"""

from __future__ import annotations

import collections
import re
import string

PUNCTUATION = set(string.punctuation)
ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    return " ".join(ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not expected:  # v2: an empty answer matches only an empty answer
        return float(predicted == expected)
    common = collections.Counter(predicted) & collections.Counter(expected)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


def best_over_gold(score, prediction: str, golds: list[str]) -> float:
    return max(score(prediction, gold) for gold in (golds or [""]))


def squad_scores(predictions: list[str], golds: list[list[str]]) -> dict:
    """Mean EM and F1 (as fractions) of predicted answer texts against each question's gold texts."""
    em = [best_over_gold(exact_match, p, g) for p, g in zip(predictions, golds)]
    f1 = [best_over_gold(token_f1, p, g) for p, g in zip(predictions, golds)]
    count = max(len(predictions), 1)
    return {"exact_match": sum(em) / count, "f1": sum(f1) / count}
