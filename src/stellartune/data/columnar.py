"""Arrow columns read as Python sequences: data larger than memory, kept on disk and memory-mapped.

A `Column` is what `Examples.texts` (or `labels`, `positions`) is when the examples come from a store
(`store.py`): `len`, indexing, slicing and iteration work as on a list, but a value becomes a Python object
only when it is read, a slice or a batch at a time, so ten million texts cost the memory of the pages read.
A subset (a held-out split) is a view through an array of row numbers, not a copy.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

READ_BATCH = 8192  # values turned into Python objects at once when a column is iterated


class Column(Sequence):
    """One column of an Arrow table, optionally seen through `rows` (the table rows of this view, in order).
    `origin`: the file it is stored in (what a cache of values computed from it is keyed by); `prefix`: text
    put before each value as it is read (a position's file name)."""

    def __init__(self, array: pa.ChunkedArray, origin: str, rows: np.ndarray | None = None, prefix: str = ""):
        self.array, self.origin, self.rows, self.prefix = array, origin, rows, prefix

    def __len__(self) -> int:
        return len(self.array) if self.rows is None else len(self.rows)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return self.values(range(len(self))[key])
        index = operator.index(key)
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self.values(range(index % len(self), index % len(self) + 1))[0]

    def __iter__(self) -> Iterator:
        for start in range(0, len(self), READ_BATCH):
            yield from self.values(range(start, min(start + READ_BATCH, len(self))))

    def table_rows(self, positions) -> np.ndarray | range:
        """The table rows at these positions of the view."""
        return positions if self.rows is None else self.rows[np.asarray(positions, dtype=np.int64)]

    def values(self, positions) -> list:
        """The values at some positions (a range or an array of them) as a list of Python objects."""
        values = self.arrow(positions).to_pylist()
        return [self.prefix + value for value in values] if self.prefix else values

    def arrow(self, positions) -> pa.ChunkedArray:
        """The values at some positions, as Arrow values (no prefix): for computing on them in Arrow."""
        rows = self.table_rows(positions)
        if isinstance(rows, range) and rows.step == 1:
            return self.array.slice(rows.start, len(rows))
        if len(rows) == 0:
            return self.array.slice(0, 0)
        # a take from the span the rows cover: a take from the whole array costs the whole array
        rows = np.asarray(rows, dtype=np.int64)
        first = int(rows.min())
        return self.array.slice(first, int(rows.max()) - first + 1).take(pa.array(rows - first))

    def whole(self) -> pa.ChunkedArray:
        """This view's values as Arrow values."""
        return self.arrow(range(len(self)))

    def distinct(self) -> list:
        """The distinct values; of a column of lists, each distinct item as a one-item list."""
        if pa.types.is_list(self.array.type):
            return [[item] for item in pc.unique(pc.list_flatten(self.whole())).to_pylist()]
        return pc.unique(self.whole()).to_pylist()

    def take(self, positions) -> Column:
        """The view of some positions, in the order given."""
        return Column(self.array, self.origin, np.asarray(self.table_rows(positions), dtype=np.int64), self.prefix)

    def identity(self) -> str:
        """Which stored rows this view holds, for a cache key: the file, and a digest of the rows ("all": all)."""
        rows = "all" if self.rows is None else hashlib.sha256(self.rows.tobytes()).hexdigest()
        return f"{self.origin}|{rows}"

    def codes(self) -> np.ndarray:
        """Each value's rank among the distinct values (sorted as Python sorts them): a class label as an
        integer, for numpy and scikit-learn, without a Python object per row."""
        encoded = pc.dictionary_encode(self.array).unify_dictionaries()
        names = encoded.chunks[0].dictionary.to_pylist() if encoded.num_chunks else []
        rank = np.empty(len(names), dtype=np.int64)
        rank[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(names))
        indices = np.concatenate([chunk.indices.to_numpy(zero_copy_only=False) for chunk in encoded.chunks]) \
            if encoded.num_chunks else np.zeros(0, dtype=np.int64)
        codes = rank[indices]
        return codes if self.rows is None else codes[self.rows]


class FeatureRows(Sequence):
    """Token ids stored as Arrow list columns (one row per encoded example): `rows[i]` is the dict of lists a
    tokenizer returns, as batching pads it. The attention mask is not stored: an unpadded one is all ones,
    and padding writes it again."""

    def __init__(self, table: pa.Table):
        self.table = table
        self.names = [name for name in table.column_names if name != "text_of"]

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, key):
        if isinstance(key, slice):
            return [self[i] for i in range(len(self))[key]]
        index = operator.index(key)
        return {name: self.table.column(name)[index].as_py() for name in self.names}

    def lengths(self) -> np.ndarray:
        """The tokens of each row."""
        return pc.list_value_length(self.table.column("input_ids")).to_numpy()


def open_table(path: Path) -> pa.Table:
    """An Arrow IPC file, memory-mapped: its columns are read from disk as they are touched."""
    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()
