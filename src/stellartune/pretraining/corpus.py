"""Unlabeled text for pretraining: a .txt file (one document per line) or any table stellartune
reads (CSV, TSV, JSON, JSONL, Parquet, datasets) with a text column."""

from __future__ import annotations

from pathlib import Path

from ..data.examples import resolve_columns
from ..data.readers import decode_utf8, read_table
from ..errors import StellarError


def read_documents(source, text_column: str | None = None) -> list[str]:
    """The documents of `source`, stripped."""
    if isinstance(source, (str, Path)) and str(source).lower().endswith(".txt"):
        documents = [line.strip() for line in decode_utf8(Path(source)).splitlines() if line.strip()]
        if not documents:
            raise StellarError(f"{source}: no text (a .txt corpus holds one document per line)")
        return documents
    table = read_table(source)
    column = resolve_columns(table, text_column, "none", None, need_label=False).text
    documents = []
    for index, row in enumerate(table.rows):
        text = row.get(column)
        if not isinstance(text, str) or not text.strip():
            raise StellarError(f"{table.locate(index, column)}: empty or missing text")
        documents.append(text.strip())
    return documents
