"""The report sections of each kind of prediction, from a run's evaluation records (eval_predictions.jsonl:
the text, its gold label and what the model predicted). Tasks choose which apply to them."""

from __future__ import annotations

from collections import Counter

import numpy as np

from .diagnostics import calibration, label_suspects
from .metrics import entity_metrics
from .sections import Bars, Heatmap, Histogram, Lines, Scatter, Section, Table
from .squad import best_over_gold, exact_match, token_f1

SHOWN = 20  # rows of example tables: the worst cases, not the whole evaluation set
SUSPECTS_SHOWN = 50
TEXT_CHARS = 300


def clip(text: str) -> str:
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


def shown_text(record: dict) -> str:
    return clip(record["text"] + (f"  ‖  {record['text_pair']}" if record.get("text_pair") else ""))


def per_class_table(scores: dict) -> Table:
    rows = [[name, s["precision"], s["recall"], s["f1"], s["support"]] for name, s in scores.items()]
    return Table("Per-class scores", ["label", "precision", "recall", "F1", "support"],
                 sorted(rows, key=lambda row: row[3]), "worst F1 first")


def single_label_sections(records: list[dict], labels: list[str]) -> list[Section]:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    index = {name: i for i, name in enumerate(labels)}
    probabilities = np.array([[r["scores"][name] for name in labels] for r in records])
    gold = np.array([index[r["gold"]] for r in records])
    predicted = probabilities.argmax(1)
    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=ids, zero_division=0)
    per_class = {name: {"precision": p, "recall": r, "f1": f, "support": int(s)}
                 for name, p, r, f, s in zip(labels, precision, recall, f1, support)}
    counts = confusion_matrix(gold, predicted, labels=ids)
    normalised = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    confidence, correct = probabilities.max(1), predicted == gold
    mean_confidence, accuracy, error = calibration(confidence, correct)
    scores = Section("Classes", [
        Heatmap("Confusion matrix (counts)", counts.tolist(), labels, labels, "predicted", "gold"),
        Heatmap("Confusion matrix (share of each gold label)", normalised.tolist(), labels, labels, "predicted",
                "gold", ".2f"),
        per_class_table(per_class)], f"accuracy {correct.mean():.4f} on {len(records)} evaluation examples")
    calibrated = Section("Calibration", [
        Lines("Reliability diagram", "confidence (top probability)", "accuracy",
              {"model": (mean_confidence.tolist(), accuracy.tolist())}, diagonal=True),
        Histogram("Confidence of the predictions", confidence.tolist(), "top probability", bins=20)],
        f"expected calibration error {error:.4f} (10 bins): how far the top probability is from the "
        "accuracy at that probability, on average")
    wrong = np.flatnonzero(~correct)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:SHOWN]
    order, flagged = label_suspects(probabilities, gold)
    suspects = order[flagged][:SUSPECTS_SHOWN]
    examples = Section("Examples", [
        Table("Most confident wrong predictions", ["text", "gold", "predicted", "confidence"],
              [[shown_text(records[i]), labels[gold[i]], labels[predicted[i]], float(confidence[i])] for i in wrong]),
        Table("Likely label errors", ["rank", "text", "gold", "predicted", "p(gold)"],
              [[k + 1, shown_text(records[i]), labels[gold[i]], labels[predicted[i]], float(probabilities[i, gold[i]])]
               for k, i in enumerate(suspects)],
              f"{flagged.sum()} of {len(records)} rows whose gold label confident learning (Northcutt et al. 2021) "
              f"calls into doubt{f', the first {SUSPECTS_SHOWN} shown' if flagged.sum() > SUSPECTS_SHOWN else ''}; "
              "ranked by the probability the model gives the gold label, lowest first. Check these rows in the data.")])
    return [scores, calibrated, examples, length_section(records, correct, "accuracy")]


def length_section(records: list[dict], values: np.ndarray, metric: str) -> Section:
    """`metric` (the mean of each record's `values`) by document length, in words, in quarters of the
    evaluation set: does a long text fare worse?"""
    words = np.array([len((r["text"] + " " + (r.get("text_pair") or "")).split()) for r in records])
    edges = np.unique(np.quantile(words, [0, 0.25, 0.5, 0.75, 1]).round())
    groups = np.clip(np.searchsorted(edges, words, side="right") - 1, 0, max(len(edges) - 2, 0))
    names, means, windows = [], [], np.array([r.get("windows", 1) for r in records])
    for g in range(max(len(edges) - 1, 1)):
        chosen = groups == g
        if chosen.any():
            names.append(f"{int(words[chosen].min())}-{int(words[chosen].max())} words ({chosen.sum()})")
            means.append(float(values[chosen].mean()))
    return Section("Length", [Bars(f"{metric[0].upper()}{metric[1:]} by text length (a quarter of the texts each)",
                                   names, {metric: means}, metric)],
                   f"{(windows > 1).sum()} of {len(records)} evaluation texts were longer than --max-length and read "
                   f"in windows (up to {windows.max()} each)" if (windows > 1).any() else
                   "no evaluation text took more than one window")


def multi_label_sections(records: list[dict], labels: list[str], threshold: float) -> list[Section]:
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    probabilities = np.array([[r["scores"][name] for name in labels] for r in records])
    gold = np.array([[name in r["gold"] for name in labels] for r in records], dtype=int)
    predicted = probabilities >= threshold
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, zero_division=0)
    per_class = {name: {"precision": p, "recall": r, "f1": f, "support": int(s)}
                 for name, p, r, f, s in zip(labels, precision, recall, f1, support)}
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    curve = [f1_score(gold, probabilities >= t, average="micro", zero_division=0) for t in grid]
    found, wanted = (predicted & (gold == 1)).sum(1), predicted.sum(1) + gold.sum(1)
    example_f1 = np.where(wanted > 0, 2 * found / np.maximum(wanted, 1), 1.0)  # no label given and none due: right
    return [Section("Labels", [
        Lines("Micro-F1 against the decision threshold", "threshold", "micro-F1", {"micro-F1": (grid.tolist(), curve)},
              {f"chosen threshold {threshold:.2f}": threshold}),
        Bars("F1 of each label", labels, {"F1": f1.tolist()}, "F1"),
        per_class_table(per_class)],
        f"threshold {threshold:.2f} (chosen for micro-F1 on the evaluation set) on {len(records)} examples"),
        length_section(records, example_f1, "F1 of each example's labels")]


def regression_sections(records: list[dict]) -> list[Section]:
    gold = np.array([float(r["gold"]) for r in records])
    predicted = np.array([float(r["score"]) for r in records])
    residual = predicted - gold
    worst = np.argsort(-np.abs(residual), kind="stable")[:SHOWN]
    return [Section("Predictions", [
        Scatter("Predicted against gold", gold.tolist(), predicted.tolist(), "gold", "predicted"),
        Histogram("Residuals (predicted - gold)", residual.tolist(), "residual"),
        Scatter("Residuals against gold", gold.tolist(), residual.tolist(), "gold", "residual", diagonal=False),
        Table("Largest errors", ["text", "gold", "predicted", "error"],
              [[shown_text(records[i]), float(gold[i]), float(predicted[i]), float(residual[i])] for i in worst])],
        f"mean absolute error {np.abs(residual).mean():.4f} on {len(records)} examples"),
        length_section(records, np.abs(residual), "mean absolute error")]


def entity_sections(records: list[dict]) -> list[Section]:
    from ..data.tag_schemes import entities

    scores = entity_metrics([r["tags"] for r in records], [r["gold"] for r in records])
    errors, examples = Counter(), {}
    for record in records:
        words = record["text"].split(" ")
        for kind in entity_errors(entities(record["gold"]), entities(record["tags"]), words):
            errors[kind] += 1
            examples.setdefault(kind, clip(record["text"]))
    return [Section("Entity types", [
        Bars("Scores of each entity type", list(scores["per_class"]),
             {name: [s[name] for s in scores["per_class"].values()] for name in ("precision", "recall", "f1")}, "score"),
        per_class_table(scores["per_class"]),
        Table("Most common errors", ["error", "gold", "predicted", "count", "an example sentence"],
              [[*kind, count, examples[kind]] for kind, count in errors.most_common(SHOWN)],
              "type: same words, another type; boundary: overlapping words, same type; missed: no predicted "
              "entity overlaps a gold one; spurious: no gold entity overlaps a predicted one")],
        f"entity F1 {scores['f1']:.4f} on {len(records)} sentences")]


def entity_errors(gold: list[tuple], predicted: list[tuple], words: list[str]) -> list[tuple[str, str, str]]:
    """(kind, gold, predicted) of each error: a gold entity not predicted exactly, or a predicted one with
    no gold entity overlapping it."""
    def overlaps(a, b) -> bool:
        return a[1] < b[2] and b[1] < a[2]

    def shown(entity) -> str:
        return f"{entity[0]}: {' '.join(words[entity[1]:entity[2]])}"

    found = []
    for entity in gold:
        if entity in predicted:
            continue
        near = [p for p in predicted if overlaps(entity, p)]
        kind = ("missed" if not near else "type" if near[0][1:] == entity[1:] else
                "boundary" if near[0][0] == entity[0] else "boundary and type")
        found.append((kind, shown(entity), shown(near[0]) if near else "—"))
    found += [("spurious", "—", shown(p)) for p in predicted if not any(overlaps(p, g) for g in gold)]
    return found


def answer_sections(records: list[dict]) -> list[Section]:
    golds = [[g["text"] for g in r["gold"]] for r in records]
    answers = [r["answer"] for r in records]
    f1 = np.array([best_over_gold(token_f1, a, g) for a, g in zip(answers, golds)])
    exact = np.array([best_over_gold(exact_match, a, g) for a, g in zip(answers, golds)])
    lengths = np.array([min(len(text.split()) for text in g) if g else 0 for g in golds])
    groups = [(0, 0, "unanswerable"), (1, 1, "1 word"), (2, 3, "2-3 words"), (4, 6, "4-6 words"), (7, 10**6, "7+ words")]
    shown_groups = [(low, high, name) for low, high, name in groups if ((lengths >= low) & (lengths <= high)).any()]
    members = [(lengths >= low) & (lengths <= high) for low, high, _ in shown_groups]
    wrong = np.argsort(f1, kind="stable")[: SHOWN]
    return [Section("Answers", [
        Bars("EM and F1 by length of the gold answer", [name for *_, name in shown_groups],
             {"exact match": [100 * exact[m].mean() for m in members], "F1": [100 * f1[m].mean() for m in members]},
             "score (%)"),
        Table("Questions by length of the gold answer", ["answer length", "questions", "exact match", "F1"],
              [[name, int(m.sum()), 100 * float(exact[m].mean()), 100 * float(f1[m].mean())]
               for (*_, name), m in zip(shown_groups, members)]),
        Table("Wrong answers", ["question", "predicted", "gold", "F1"],
              [[records[i]["text"], answers[i] or "(no answer)", " | ".join(golds[i]), 100 * float(f1[i])]
               for i in wrong if f1[i] < 1])],
        f"exact match {100 * exact.mean():.1f}, F1 {100 * f1.mean():.1f} on {len(records)} questions")]
