"""CoNLL-style token files: one token per line, its tag in a column, blank lines between sentences.

`-DOCSTART-` lines are document separators, not sentences, and are skipped. Each sentence keeps
the line it starts on, so errors can name it.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import StellarError
from .readers import Table, decode_utf8

CONLL_SUFFIXES = {".conll", ".conllu", ".iob", ".bio"}  # CoNLL by name; other files by content


def read_conll(path: str | Path, tag_column: int = -1) -> Table:
    """A table with columns `tokens` and `tags` (lists), one row per sentence."""
    path = Path(path)
    if not path.exists():
        raise StellarError(f"{path}: file not found")
    rows, positions, tokens, tags, start = [], [], [], [], 0

    def end_sentence():
        if tokens:
            rows.append({"tokens": list(tokens), "tags": list(tags)})
            positions.append(f"line {start}")
            tokens.clear()
            tags.clear()

    for number, line in enumerate(decode_utf8(path).splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            end_sentence()
            continue
        if len(fields) < 2:
            raise StellarError(f"{path}, line {number}: expected a token and its tag separated by whitespace, "
                               f"got {line.strip()!r}")
        try:
            tag = fields[tag_column]
        except IndexError:
            raise StellarError(f"{path}, line {number}: no column {tag_column} (the line has {len(fields)})") from None
        start = start if tokens else number
        tokens.append(fields[0])
        tags.append(tag)
    end_sentence()
    if not rows:
        raise StellarError(f"{path}: no sentences (expected one token and tag per line, blank lines between sentences)")
    return Table(str(path), ["tokens", "tags"], rows, positions)
