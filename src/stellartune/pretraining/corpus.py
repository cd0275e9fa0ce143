"""Unlabeled text for pretraining: a .txt file (one document per line; blank lines are skipped) or any table
stellartune reads (CSV, TSV, JSON, JSONL, Parquet, datasets) with a text column.

A data file or a dataset on disk is read through the store (data/store.py) as a training file is: a chunk
of documents at a time, each checked, onto disk, where the run reads them memory-mapped; the next run on
the same data reuses them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

from ..data.examples import Columns, Examples, resolve_columns
from ..data.readers import Table, content_files, file_lines, is_data_file, read_chunks, tables_of
from ..data.store import CHUNK_ROWS, Store
from ..errors import StellarError


def read_documents(source, text_column: str | None = None, store: Store | None = None) -> Examples:
    """The documents of `source`, stripped, as the texts of examples (with where each came from); a data
    file or a dataset on disk through `store` (None: in memory)."""
    files = content_files(source) if store is not None else None
    chunks = corpus_chunks(source, CHUNK_ROWS if files else None)
    first = next(chunks)
    column = resolve_columns(first, text_column, "none", None, need_label=False).text
    build = lambda table: documents_of(table, column)
    if files is None:
        return build(first)
    return store.examples(str(source), files, itertools.chain([first], chunks), build, f"corpus|{column}", "single")


def corpus_chunks(source, rows: int | None) -> Iterator[Table]:
    """`source` as tables of at most `rows` rows; a .txt file as its non-blank lines, whatever tabs they hold."""
    if not is_data_file(source) or Path(source).suffix.lower() != ".txt":
        return read_chunks(source, rows)
    lines = (({"text": line.strip()}, f"line {number}") for number, line in enumerate(file_lines(Path(source)), 1)
             if line.strip())
    return tables_of(str(source), ["text"], lines, rows, f"{source}: file is empty")


def documents_of(table: Table, column: str) -> Examples:
    """A table's documents, each a non-empty text."""
    documents = []
    for index, row in enumerate(table.rows):
        text = row.get(column)
        if not isinstance(text, str) or not text.strip():
            raise StellarError(f"{table.locate(index, column)}: empty or missing text")
        documents.append(text.strip())
    return Examples(documents, None, None, [table.locate(i) for i in range(len(documents))], Columns(column, None, None))
