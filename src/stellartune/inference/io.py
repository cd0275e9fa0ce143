"""Prediction input and output for the CLI: files or stdin in, JSONL out."""

from __future__ import annotations

import json
import sys

from ..data.examples import resolve_columns, text_cell
from ..data.readers import decode_utf8_bytes, lines_table
from ..errors import StellarError, some
from ..tasks import read_for


def read_inputs(source: str, model, text_column=None, pair_column=None) -> tuple[list[str], list[str] | None]:
    """Texts (and second texts) to label: stdin or a .txt file, one text per line, or the model's
    training columns of a table."""
    if source == "-":
        table = lines_table(decode_utf8_bytes(sys.stdin.buffer.read(), "stdin"), "stdin")
        if not table.rows:
            raise StellarError("stdin: no text to predict (one text per line)")
    else:
        table = read_for(model.task.problem, source)
    saved_text, saved_pair = model.columns.text, model.columns.pair
    columns = resolve_columns(table, text_column or (saved_text if saved_text in table.columns else None),
                              pair_column or (saved_pair if saved_pair in table.columns else None), need_label=False)
    if saved_pair and not columns.pair:
        raise StellarError(f"{table.source}: this model labels sentence pairs; give a table with both texts and "
                           f"name the second text column with --text-pair-column (columns found: "
                           f"{some(table.columns, 12)})")
    texts = [text_cell(table, i, row, columns.text) for i, row in enumerate(table.rows)]
    pairs = [text_cell(table, i, row, columns.pair) for i, row in enumerate(table.rows)] if saved_pair else None
    return texts, pairs


def write_predictions(destination: str, texts, pairs, predictions) -> None:
    handle = sys.stdout if destination == "-" else open(destination, "w")
    try:
        for i, prediction in enumerate(predictions):
            record = {"text": texts[i], **({"text_pair": pairs[i]} if pairs else {}), **prediction}
            handle.write(json.dumps(record) + "\n")
    finally:
        if handle is not sys.stdout:
            handle.close()
    if destination != "-":
        print(f"wrote {len(predictions)} predictions to {destination}", file=sys.stderr)
