"""Evaluation rows that training has seen: an evaluation set that shares rows with training scores the
model on data it learned, and reports a score higher than it will get on new data."""

from __future__ import annotations

from dataclasses import dataclass

from .examples import Examples

WARN_SHARE = 0.01  # above this share of shared rows the log warns: one in a hundred moves accuracy a point


@dataclass
class Overlap:
    shared: int  # evaluation rows whose input also occurs in training
    repeated: int  # evaluation rows that repeat an earlier evaluation row
    total: int

    @classmethod
    def between(cls, train: Examples, evaluation: Examples) -> "Overlap":
        seen = {row_key(train, i) for i in range(len(train))}
        keys = [row_key(evaluation, i) for i in range(len(evaluation))]
        return cls(sum(key in seen for key in keys), len(keys) - len(set(keys)), len(keys))

    @property
    def worrying(self) -> bool:
        return self.shared + self.repeated > WARN_SHARE * self.total

    def describe(self) -> str:
        share = lambda count: f"{count} of {self.total} ({count / max(self.total, 1):.0%})"
        text = (f"{share(self.shared)} evaluation rows also occur in the training data (same text, whitespace "
                f"aside)" + (f"; {share(self.repeated)} repeat another evaluation row" if self.repeated else ""))
        if self.worrying:
            text += "; the evaluation scores overstate what the model does on new data: remove those rows"
        return text


def row_key(examples: Examples, index: int) -> tuple[str, str]:
    """The input of one row, whitespace normalised: text and second text (pairs, QA contexts)."""
    normal = lambda value: " ".join(str(value).split())
    return normal(examples.texts[index]), normal(examples.pairs[index]) if examples.pairs else ""
