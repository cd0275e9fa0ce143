"""CoNLL-style token files: one token per line, its tag in a column, blank lines between sentences.

`-DOCSTART-` lines are document separators, not sentences, and are skipped. Each sentence keeps
the line it starts on, so errors can name it. A file is read a line at a time, in tables of sentences.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import StellarError
from .readers import Table, file_lines, tables_of

CONLL_SUFFIXES = {".conll", ".conllu", ".iob", ".bio"}  # CoNLL by name; other files by content


def read_conll(path: str | Path, tag_column: int = -1) -> Table:
    """A table with columns `tokens` and `tags` (lists), one row per sentence."""
    return next(conll_chunks(path, tag_column, None))


def conll_chunks(path: str | Path, tag_column: int, rows: int | None) -> Iterator[Table]:
    """The file's sentences as tables of at most `rows` sentences (all in one when None), read as needed."""
    path = Path(path)
    if not path.exists():
        raise StellarError(f"{path}: file not found")
    return tables_of(str(path), ["tokens", "tags"], sentences(path, tag_column), rows,
                     f"{path}: no sentences (expected one token and tag per line, blank lines between sentences)")


def sentences(path: Path, tag_column: int) -> Iterator[tuple[dict, str]]:
    """Each sentence as a row {"tokens", "tags"} and the line it starts on."""
    tokens, tags, start = [], [], 0
    for number, line in enumerate(file_lines(path), 1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if tokens:
                yield {"tokens": tokens, "tags": tags}, f"line {start}"
                tokens, tags = [], []
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
    if tokens:
        yield {"tokens": tokens, "tags": tags}, f"line {start}"
