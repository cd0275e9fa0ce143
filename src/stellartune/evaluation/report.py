"""Metrics as tables people read: headline numbers, per-class scores, confusion matrix."""

from __future__ import annotations


def format_table(rows: list[list], header: list[str]) -> str:
    cells = [[str(c) for c in header]] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]])


def fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def metrics_report(metrics: dict, label_names: list[str] | None = None, max_classes: int = 30) -> str:
    headline = [[k, v] for k, v in metrics.items() if isinstance(v, (int, float))]
    parts = [format_table(headline, ["metric", "value"])]
    per_class = metrics.get("per_class")
    if per_class and len(per_class) <= max_classes:
        rows = [[name, s["precision"], s["recall"], s["f1"], s["support"]] for name, s in per_class.items()]
        parts.append(format_table(rows, ["label", "precision", "recall", "f1", "support"]))
    matrix = metrics.get("confusion_matrix")
    if matrix and label_names and len(label_names) <= 12:
        rows = [[f"true {name}"] + counts for name, counts in zip(label_names, matrix)]
        parts.append(format_table(rows, ["confusion"] + [f"pred {n}" for n in label_names]))
    return "\n\n".join(parts)
