"""Examples and their token ids on disk, keyed by content: read and tokenized once, reused by the next run.

A training file is read a chunk of rows at a time; each chunk is checked as any table is (`build_examples`:
a bad cell still stops with its file, line and column) and appended to an Arrow file, which the run then
reads memory-mapped (`columnar.Column`): memory does not grow with the rows. Token ids go to another Arrow
file, written a chunk of texts at a time. Each file is named by a digest of all it was made from: the data
file's bytes and the settings that read it; for token ids also the rows (a held-out split), the tokenizer and
how long texts are read. A file changed by one byte gets new names, so a stale entry is never read; entries
are written under a temporary name and renamed whole, so a killed or concurrent run never reads half of one.

The folder is `$STELLARTUNE_CACHE/data` (default ~/.cache/stellartune/data); the log names each entry it
writes or reuses. Deleting the folder (or any file in it) is always safe: what is missing is made again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from ..atomic import as_os_error, atomic_file, is_write_fault, write_fault
from ..config import cache_dir
from .columnar import Column, FeatureRows, MappedFile
from .encoded import ReadTexts
from .examples import Columns, Examples
from .readers import Table

CHUNK_ROWS = 100_000  # rows read, checked and written at a time (and what --task auto looks at)
TOKEN_BATCH = 65_536  # token-id rows per record batch of a stored file
FORMAT = "1"  # what the stored files hold: a new value when that changes
LABEL_TYPES = {"single": pa.string(), "list": pa.list_(pa.string()), "number": pa.float64(),
               "answers": pa.list_(pa.struct([("text", pa.string()), ("start", pa.int64())]))}


def digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def files_digest(paths: list[Path]) -> str:
    """The digest of the files' bytes, one after the other (about a second per gigabyte)."""
    hasher = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 24):
                hasher.update(block)
    return hasher.hexdigest()


@dataclass
class Store:
    """A folder of stored data files, and whether reading and tokenizing show a progress bar (on a terminal)."""

    folder: Path
    progress: bool = True

    @classmethod
    def at(cls, setting: str, progress: bool = True) -> Store | None:
        """The store of a --data-cache setting: a folder; auto: $STELLARTUNE_CACHE/data (default
        ~/.cache/stellartune/data); off: None (read and tokenize in memory)."""
        if setting == "off":
            return None
        return cls(cache_dir() / "data" if setting == "auto" else Path(setting), progress)

    def examples(self, source: str, files: list[Path], tables: Iterator[Table], build: Callable[[Table], Examples],
                 settings: str, label_kind: str) -> Examples:
        """The examples of a data file or dataset from the store, keyed by `files` (all of its content): `tables`,
        its chunks, are read only when it has not stored them yet (`build` checks one; labels of `label_kind`);
        their `note` says which it did."""
        path = self.folder / f"examples-{digest(FORMAT, files_digest(files), Path(source).suffix.lower(), settings)}.arrow"
        if path.exists():
            note = f"{source}: reused the rows read and checked before, stored in {path}"
        else:
            started = time.perf_counter()
            rows = write_examples(path, tables, build, LABEL_TYPES[label_kind], self.progress)
            seconds = time.perf_counter() - started
            note = (f"{source}: read and checked {rows:,} rows in {seconds:.1f} s ({rows / max(seconds, 1e-9):,.0f} "
                    f"rows/s), stored in {path}")
        return replace(open_examples(path, str(source)), note=note, store=self)

    def tokens(self, texts: Column, settings: str, tokenizer, parts: Iterable[tuple[int, ReadTexts]]) -> ReadTexts:
        """The token ids of stored texts, from the store when made before with the same `settings` and tokenizer;
        else `parts` (consecutive chunks, made only now) are stored."""
        key = digest(FORMAT, texts.identity(), settings, tokenizer_digest(tokenizer))
        path = self.folder / f"tokens-{key}.arrow"
        if path.exists():
            note = f"reused the token ids of {len(texts):,} texts tokenized before, stored in {path}"
        else:
            started = time.perf_counter()
            write_tokens(path, parts, len(texts), self.progress)
            seconds = time.perf_counter() - started
            note = (f"tokenized {len(texts):,} texts in {seconds:.1f} s ({len(texts) / max(seconds, 1e-9):,.0f} "
                    f"texts/s), stored in {path}")
        return open_tokens(path, note)

    def remembered(self, kind: str, key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """What `compute` returns (arrays by name; a held-out split, counts of shared rows), stored under `kind`
        and `key` (what it was computed from): computed once for them, read back by the next run."""
        path = self.folder / f"{kind}-{digest(FORMAT, key)}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as stored:
                return dict(stored)
        arrays = compute()
        with stored_file(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        return arrays


@contextlib.contextmanager
def stored_file(path: Path) -> Iterator[Path]:
    """A temporary path that becomes `path` when the block ends (`atomic_file`); a full or read-only disk
    stops with one line that says what to do."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp:
            yield tmp
    except OSError as e:
        fault = as_os_error(e)
        if fault is None or not is_write_fault(fault):
            raise
        raise write_fault(fault, f"{path.parent}: cannot store the data read and tokenized there",
                          "free some space, or give --data-cache another folder (or off: read in memory)") from None


def write_examples(path: Path, tables: Iterator[Table], build: Callable[[Table], Examples], label_type: pa.DataType,
                   progress: bool) -> int:
    rows, writer = 0, None
    progress = tqdm(desc="reading", unit=" rows", dynamic_ncols=True, disable=None if progress else True)
    with stored_file(path) as tmp:
        try:
            for table in tables:
                batch = examples_batch(build(table), table.positions, label_type)
                writer = writer or pa.ipc.new_file(str(tmp), batch.schema)
                writer.write_batch(batch)
                rows += batch.num_rows
                progress.update(batch.num_rows)
        finally:
            progress.close()
            if writer is not None:
                writer.close()
    return rows


def examples_batch(examples: Examples, positions: list[str], label_type: pa.DataType) -> pa.RecordBatch:
    """One chunk's examples as Arrow columns; the names of the columns they came from go in the metadata."""
    values = {"text": examples.texts, "position": positions, "pair": examples.pairs, "label": examples.labels,
              "words": examples.words, "offsets": examples.offsets}
    types = {"text": pa.string(), "position": pa.string(), "pair": pa.string(), "label": label_type,
             "words": pa.list_(pa.string()), "offsets": pa.list_(pa.list_(pa.int32()))}
    names = [name for name, column in values.items() if column is not None]
    schema = pa.schema({name: types[name] for name in names}, metadata={"columns": json.dumps(vars(examples.columns))})
    return pa.record_batch([pa.array(values[name], type=types[name]) for name in names], schema=schema)


def open_examples(path: Path, source: str) -> Examples:
    file = MappedFile(path)
    column = lambda name: Column(file, name) if name in file.table.column_names else None
    columns = Columns(**json.loads(file.table.schema.metadata[b"columns"]))
    return Examples(column("text"), column("pair"), column("label"), Column(file, "position", prefix=f"{source}, "),
                    columns, column("words"), column("offsets"))


def write_tokens(path: Path, parts: Iterable[tuple[int, ReadTexts]], texts: int, progress: bool) -> None:
    """Consecutive chunks' token ids, in record batches of TOKEN_BATCH features or more (few batches: opening
    the file reads each batch's header); how many of its texts were cut goes in each batch's metadata."""
    writer = None
    progress = tqdm(total=texts, desc="tokenizing", unit=" texts", dynamic_ncols=True,
                    disable=None if progress else True)
    with stored_file(path) as tmp:
        try:
            for batch, cut in grouped_batches(parts, progress):
                writer = writer or pa.ipc.new_file(str(tmp), batch.schema)
                writer.write_batch(batch, custom_metadata={"cut": str(cut)})
        finally:
            progress.close()
            if writer is not None:
                writer.close()


def grouped_batches(parts: Iterable[tuple[int, ReadTexts]], progress) -> Iterator[tuple[pa.RecordBatch, int]]:
    """The chunks' token ids as record batches of TOKEN_BATCH features or more, each with its texts cut."""
    pending, cut = [], 0
    for start, part in parts:
        # a chunk too short to fill a pretraining block has no rows: its tokens were carried to the next
        pending += [tokens_batch(start, part)] if part.features else []
        cut += part.cut
        progress.update(part.text_count)
        if sum(batch.num_rows for batch in pending) >= TOKEN_BATCH:
            yield pa.concat_batches(pending), cut
            pending, cut = [], 0
    if pending:
        yield pa.concat_batches(pending), cut


def tokens_batch(start: int, part: ReadTexts) -> pa.RecordBatch:
    """One chunk's token ids (the attention mask is all ones: not stored); `text_of` counts from the first text."""
    names = [name for name in part.features[0] if name != "attention_mask"]
    columns = {name: int32_array([f[name] for f in part.features]) for name in names}
    if part.text_of is not None:
        columns["text_of"] = pa.array([start + t for t in part.text_of], type=pa.int64())
    return pa.record_batch(list(columns.values()), names=list(columns))


def int32_array(values: list) -> pa.Array:
    """Lists of integers (or one integer per feature: a window's CLS position) as int32 Arrow values."""
    # inferred, then cast: three times faster than converting to int32 directly (word starts come as bools)
    array = pa.array(values)
    return array.cast(pa.list_(pa.int32()) if pa.types.is_list(array.type) else pa.int32())


def open_tokens(path: Path, note: str) -> ReadTexts:
    file = MappedFile(path)
    reader = file.reader
    cut = sum(int(reader.get_batch_with_custom_metadata(i)[1][b"cut"]) for i in range(reader.num_record_batches))
    split = "text_of" in file.table.column_names and cut  # windows, and a text long enough to be split
    text_of = file.table.column("text_of").to_numpy().copy() if split else None  # a copy: torch indexes with it
    rows = FeatureRows(file)
    return ReadTexts(rows, text_of, cut, rows.lengths(), note)


def tokenizer_digest(tokenizer) -> str:
    """What a tokenizer makes of text: its class, vocabulary and rules (not its current truncation and
    padding, which each call sets)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        state.pop("truncation", None)
        state.pop("padding", None)
    else:
        state = {"vocab": tokenizer.get_vocab()}
    state["special"] = tokenizer.special_tokens_map
    return digest(type(tokenizer).__name__, json.dumps(state, sort_keys=True, default=str))
