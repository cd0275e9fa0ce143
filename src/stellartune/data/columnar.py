"""Arrow columns read as Python sequences: data larger than memory, kept on disk and memory-mapped.

A `Column` is what `Examples.texts` (or `labels`, `positions`) is when the examples come from a store
(`store.py`): `len`, indexing, slicing and iteration work as on a list, but a value becomes a Python object
only when it is read, a slice or a batch at a time, so ten million texts cost the memory of the pages read.
A subset (a held-out split) is a view through an array of row numbers, not a copy.

Pages read from a mapped file count in the process's resident memory (and the OS maps in up to 2 MB around a
byte read), so reading every row once, or training long enough, would make the whole file resident: a
`MappedFile` counts what reads may have brought in and, past a budget, gives the pages back. They stay in the
OS's file cache, so reading them again costs a page fault, not a disk read; resident memory stays flat.
"""

from __future__ import annotations

import hashlib
import mmap
import operator
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

READ_BATCH = 8192  # values turned into Python objects at once when a column is iterated
RESIDENT_BUDGET = 256 << 20  # bytes of a mapped file read before its resident pages are given back
# what one read apart may map in: the page-cache folio it falls in (up to 2 MB on Linux), or 64 KB around it
FOLIO_SPAN = 2 << 20


class MappedFile:
    """An Arrow IPC file mapped read-only (`table`), whose resident pages are given back past a budget."""

    def __init__(self, path: Path):
        self.path, self.read_since_release = path, 0
        with open(path, "rb") as handle:
            self.map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self.reader = pa.ipc.open_file(pa.py_buffer(self.map))
        self.table = self.reader.read_all()  # zero-copy: views of the mapped pages

    def read(self, nbytes: int) -> None:
        """Count `nbytes` read (at most what they made resident); past the budget, give the pages back."""
        self.read_since_release += nbytes
        if self.read_since_release > RESIDENT_BUDGET:
            self.release()

    def release(self) -> None:
        self.read_since_release = 0
        if hasattr(mmap, "MADV_DONTNEED"):  # not on Windows: there the pages stay until the OS needs them
            self.map.madvise(mmap.MADV_DONTNEED)


class Column(Sequence):
    """One column of a mapped file's table, optionally seen through `rows` (the table rows of this view, in
    order); `prefix`: text put before each value as it is read (a position's file name)."""

    def __init__(self, file: MappedFile, name: str, rows: np.ndarray | None = None, prefix: str = ""):
        self.file, self.name, self.rows, self.prefix = file, name, rows, prefix
        self.array = file.table.column(name)

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
        if self.rows is None:
            return positions
        if isinstance(positions, range) and positions.step > 0:  # a slice: no array of ten million positions
            return self.rows[positions.start:positions.stop:positions.step]
        return self.rows[np.asarray(positions, dtype=np.int64)]

    def values(self, positions) -> list:
        """The values at some positions (a range or an array of them) as a list of Python objects."""
        values = self.arrow(positions).to_pylist()
        return [self.prefix + value for value in values] if self.prefix else values

    def arrow(self, positions) -> pa.ChunkedArray:
        """The values at some positions, as Arrow values (no prefix): for computing on them in Arrow."""
        rows = self.table_rows(positions)
        if isinstance(rows, range) and rows.step == 1:
            values = self.array.slice(rows.start, len(rows))
            self.file.read(values.nbytes)
            return values
        if len(rows) == 0:
            return self.array.slice(0, 0)
        self.file.read(len(rows) * 2 * FOLIO_SPAN)  # each row's offset and value pages, apart
        return taken(self.array, np.asarray(rows, dtype=np.int64))

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
        return Column(self.file, self.name, np.asarray(self.table_rows(positions), dtype=np.int64), self.prefix)

    def identity(self) -> str:
        """Which stored rows this view holds, for a cache key: the file, and a digest of the rows ("all": all)."""
        rows = "all" if self.rows is None else hashlib.sha256(self.rows.tobytes()).hexdigest()
        return f"{self.file.path}|{rows}"

    def codes(self) -> np.ndarray:
        """Each value's rank among the distinct values (sorted as Python sorts them): a class label as an
        integer, for numpy and scikit-learn, without a Python object per row."""
        encoded = pc.dictionary_encode(self.array).unify_dictionaries()
        self.file.read(self.array.nbytes)
        names = encoded.chunks[0].dictionary.to_pylist() if encoded.num_chunks else []
        rank = np.empty(len(names), dtype=np.int64)
        rank[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(names))
        indices = np.concatenate([chunk.indices.to_numpy(zero_copy_only=False) for chunk in encoded.chunks]) \
            if encoded.num_chunks else np.zeros(0, dtype=np.int64)
        codes = rank[indices]
        return codes if self.rows is None else codes[self.rows]


def taken(array: pa.ChunkedArray, rows: np.ndarray) -> pa.ChunkedArray:
    """`array`'s values at `rows`, in that order, each taken from its own chunk: a take from a chunked array
    joins all its chunks first, copying (and reading from disk) the whole column for a few rows."""
    ascending = bool(np.all(rows[1:] >= rows[:-1]))  # a held-out split's views are: no sorting back
    order = None if ascending else np.argsort(rows, kind="stable")
    ordered = rows if ascending else rows[order]
    starts = np.cumsum([0] + [len(chunk) for chunk in array.chunks])
    per_chunk = np.split(ordered, np.searchsorted(ordered, starts[1:-1]))
    pieces = [chunk.take(pa.array(part - start)) for chunk, start, part in zip(array.chunks, starts, per_chunk)
              if len(part)]
    values = pa.concat_arrays(pieces)
    return pa.chunked_array([values if ascending else values.take(pa.array(np.argsort(order)))], type=array.type)


class FeatureRows(Sequence):
    """Token ids stored as Arrow list columns (one row per encoded example): `rows[i]` is the dict of lists a
    tokenizer returns, as batching pads it. The attention mask is not stored: an unpadded one is all ones,
    and padding writes it again."""

    def __init__(self, file: MappedFile):
        self.file, self.table = file, file.table
        self.names = [name for name in self.table.column_names if name != "text_of"]

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, key):
        if isinstance(key, slice):
            return [self[i] for i in range(len(self))[key]]
        index = operator.index(key)
        self.file.read(len(self.names) * 2 * FOLIO_SPAN)
        return {name: self.table.column(name)[index].as_py() for name in self.names}

    def flat(self, name: str) -> np.ndarray:
        """Every value of a list column, one row after the other."""
        values = pc.list_flatten(self.table.column(name)).to_numpy()
        self.file.release()
        return values

    def lengths(self) -> np.ndarray:
        """The tokens of each row."""
        lengths = pc.list_value_length(self.table.column("input_ids")).to_numpy()
        self.file.release()
        return lengths
