"""Prediction input and output for the CLI: files or stdin in, JSONL out, a chunk at a time."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

from ..atomic import atomic_file
from ..data.examples import Columns, resolve_columns, text_cell
from ..errors import StellarError, some

READ_ROWS = 4096  # rows read at a time: memory stays bounded on long inputs, and batches still sort by length


def input_chunks(source: str, model, text_column=None, pair_column=None
                 ) -> Iterator[tuple[list[str], list[str] | None]]:
    """Texts (and second texts) to label, a chunk at a time: stdin ("-") or a .txt file, one text per
    line, or the model's training columns of a table."""
    columns = None
    for table in model.task.read_chunks(source, READ_ROWS):
        columns = columns or input_columns(table, model, text_column, pair_column)
        texts = [text_cell(table, i, row, columns.text) for i, row in enumerate(table.rows)]
        pairs = [text_cell(table, i, row, columns.pair) for i, row in enumerate(table.rows)] if columns.pair else None
        yield texts, pairs


def input_columns(table, model, text_column=None, pair_column=None) -> Columns:
    saved_text, saved_pair = model.columns.text, model.columns.pair
    columns = resolve_columns(table, text_column or (saved_text if saved_text in table.columns else None),
                              pair_column or (saved_pair if saved_pair in table.columns else None), need_label=False)
    if saved_pair and not columns.pair:
        raise StellarError(f"{table.source}: this model labels sentence pairs; give a table with both texts and "
                           f"name the second text column with --text-pair-column (columns found: "
                           f"{some(table.columns, 12)})")
    return columns if saved_pair else Columns(columns.text, None, None)


def predict_to(destination: str, model, chunks, batch_size: int = 64, precision: str | None = None) -> int:
    """Predict each chunk of texts (`input_chunks`) and write them as JSONL to `destination` ("-": stdout),
    chunk by chunk; a file appears only when complete. Returns how many were written."""
    if destination == "-":
        return write_chunks(sys.stdout, model, chunks, batch_size, precision)
    with atomic_file(Path(destination)) as tmp, open(tmp, "w") as handle:
        return write_chunks(handle, model, chunks, batch_size, precision)


def write_chunks(handle, model, chunks, batch_size: int, precision: str | None) -> int:
    count = 0
    for texts, pairs in chunks:
        write_predictions(handle, texts, pairs, model.predict(texts, pairs, batch_size, precision))
        count += len(texts)
    return count


def write_predictions(handle, texts, pairs, predictions) -> None:
    for i, prediction in enumerate(predictions):
        record = {"text": texts[i], **({"text_pair": pairs[i]} if pairs else {}), **prediction}
        handle.write(json.dumps(record) + "\n")
