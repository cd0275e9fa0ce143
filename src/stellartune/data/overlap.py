"""Evaluation rows that training has seen: an evaluation set that shares rows with training scores the
model on data it learned, and reports a score higher than it will get on new data."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .columnar import Column
from .examples import Examples, remembered

KEY_BATCH = 65536  # rows compared at a time
WARN_SHARE = 0.01  # above this share of shared rows the log warns: one in a hundred moves accuracy a point


@dataclass
class Overlap:
    shared: int  # evaluation rows whose input also occurs in training
    repeated: int  # evaluation rows that repeat an earlier evaluation row
    total: int

    @classmethod
    def between(cls, train: Examples, evaluation: Examples) -> "Overlap":
        """Counted once for stored examples (the next run reads the counts from the store)."""
        stored = evaluation.texts.identity() if isinstance(evaluation.texts, Column) else None
        counts = remembered(train, "overlap", stored, lambda: counted(train, evaluation))["counts"]
        return cls(*(int(count) for count in counts))

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


def counted(train: Examples, evaluation: Examples) -> dict[str, np.ndarray]:
    """Overlap's counts: training rows are read a batch at a time and compared in Arrow, in the memory of the
    evaluation set and seconds for ten million training rows."""
    keys = pa.chunked_array(list(row_keys(evaluation)), type=pa.string())
    distinct = pc.unique(keys)
    seen = [pc.unique(batch.filter(pc.is_in(batch, value_set=distinct))) for batch in row_keys(train)]
    found = pc.unique(pa.chunked_array(seen, type=pa.string()))
    shared = pc.sum(pc.is_in(keys, value_set=found)).as_py() or 0
    return {"counts": np.array([shared, len(keys) - len(distinct), len(keys)])}


def row_keys(examples: Examples) -> Iterator[pa.Array]:
    """The input of each row, whitespace normalised (text, and second text: pairs, QA contexts), a batch of
    rows at a time."""
    def normal(values, start: int):
        rows = range(start, min(start + KEY_BATCH, len(values)))
        values = values.arrow(rows) if isinstance(values, Column) else pa.array(values[start:rows.stop], pa.string())
        return pc.binary_join(pc.utf8_split_whitespace(pc.utf8_trim_whitespace(values)), " ")

    for start in range(0, len(examples), KEY_BATCH):
        key = normal(examples.texts, start)
        if examples.pairs:
            key = pc.binary_join_element_wise(key, normal(examples.pairs, start), "\x1f")
        yield key
