"""Word-tagged examples (NER) from CoNLL files, token/tag lists (JSON, JSONL, Parquet, datasets)
or texts with character-offset entity spans (`{"text": ..., "entities": [{"start", "end", "label"}]}`).

Tags are read in BIO, IOB1, IOBES or BILOU and kept as BIO. Every sentence keeps its text and
each word's character span in it, so predicted entities map back to exact characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import StellarError, some
from .conll import CONLL_SUFFIXES, conll_chunks
from .examples import Columns, Examples, first_present, is_missing
from .readers import READERS, Table, head_text, read_chunks
from .tag_schemes import to_bio

TOKEN_NAMES = ("tokens", "words")
TAG_NAMES = ("tags", "ner_tags", "ner", "labels", "label")
WORD = re.compile(r"\w+(?:[-'’.]\w+)*|[^\w\s]")  # words, keeping "U.S." and "don't" whole; punctuation alone
TAG = re.compile(r"^(O|[BIESLU]-\S+)$")


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    matches = list(WORD.finditer(text))
    return [m.group() for m in matches], [m.span() for m in matches]


def joined(words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The words as one text with single spaces, and each word's span in it."""
    offsets, position = [], 0
    for word in words:
        offsets.append((position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), offsets


def looks_like_conll(source, tag_column: int = -1) -> bool:
    """A .conll/.iob/.bio file, or any file but a table (.csv, .json, ...) whose first sentences are
    `token ... tag` lines: .txt, and CoNLL's own names (eng.train, eng.testb). One whose tags are in
    another column than `tag_column` stops with the column to give."""
    if not isinstance(source, (str, Path)):
        return False  # records or a DataFrame from the Python API
    path = Path(source)
    suffix = path.suffix.lower()
    if not path.is_file() or (suffix in READERS and suffix != ".txt"):
        return False
    if suffix in CONLL_SUFFIXES:
        return True
    lines = [line.split() for line in head_text(path).splitlines()[:50]]
    lines = [f for f in lines if f and f[0] != "-DOCSTART-"][:10]
    tags_in = lambda column: bool(lines) and all(len(f) >= 2 and -len(f) <= column < len(f) and TAG.match(f[column])
                                                 for f in lines)
    if tags_in(tag_column):
        return True
    other = next((c for c in range(1, len(lines[0])) if tags_in(c)), None) if lines else None
    if other is not None:
        raise StellarError(f"{path}: column {tag_column} holds no tags (first line: {' '.join(lines[0])!r}); "
                           f"column {other} does: add --tag-column {other}")
    return False


def token_table_chunks(source, rows: int | None, tag_column: int = -1) -> Iterator[Table]:
    """A CoNLL file or any table, in chunks of `rows` rows (a CoNLL row: a sentence)."""
    return conll_chunks(source, tag_column, rows) if looks_like_conll(source, tag_column) else read_chunks(source, rows)


def is_token_table(table: Table) -> bool:
    first = table.rows[0]
    tokens = first_present(TOKEN_NAMES, table.columns)
    return (tokens is not None and isinstance(first.get(tokens), (list, tuple))) or \
        {"text", "entities"} <= set(table.columns)


def resolve_token_columns(table: Table, text: str | None = None, label: str | None = None,
                          need_label: bool = True) -> Columns:
    if text is None and {"text", "entities"} <= set(table.columns):
        return Columns("text", None, "entities" if need_label else None)
    text = text or first_present(TOKEN_NAMES, table.columns) or first_present(("text",), table.columns)
    label = label or first_present(TAG_NAMES, table.columns)
    if text is None or (need_label and label is None):
        raise StellarError(f"{table.source}: NER data needs a tokens column and a tags column (or text and "
                           f"entities); columns found: {some(table.columns, 12)}")
    return Columns(text, None, label)


def build_token_examples(table: Table, columns: Columns, need_label: bool = True) -> Examples:
    texts, words, offsets, labels = [], [], [], [] if columns.label else None
    for i, row in enumerate(table.rows):
        value = row.get(columns.text)
        if isinstance(value, str) and value.strip():
            text = value
            sentence, spans = split_words(text)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(w, str) and w for w in value):
            sentence = list(value)
            text, spans = joined(sentence)
        else:
            raise StellarError(f"{table.locate(i, columns.text)}: expected a non-empty list of tokens or a text, "
                               f"got {value!r}")
        texts.append(text)
        words.append(sentence)
        offsets.append(spans)
        if columns.label:
            labels.append(row_tags(table, i, row, columns.label, spans))
    positions = [f"{table.source}, {p}" for p in table.positions]
    return Examples(texts, None, labels, positions, columns, words, offsets)


def row_tags(table: Table, i: int, row: dict, column: str, spans: list[tuple[int, int]]) -> list[str]:
    value = row.get(column)
    where = table.locate(i, column)
    if not isinstance(value, (list, tuple)) and is_missing(value):
        raise StellarError(f"{where}: missing tags")
    if column == "entities":
        return tags_from_entities(value, spans, where)
    if not isinstance(value, (list, tuple)) or len(value) != len(spans):
        count = len(value) if isinstance(value, (list, tuple)) else "no list of"
        raise StellarError(f"{where}: {count} tags for {len(spans)} tokens; give one tag per token")
    try:
        return to_bio([str(tag) for tag in value])
    except ValueError as e:
        raise StellarError(f"{where}: {e}") from None


def tags_from_entities(entities, spans: list[tuple[int, int]], where: str) -> list[str]:
    """BIO tags for the words each character span covers (any overlap counts)."""
    tags = ["O"] * len(spans)
    for entity in entities or []:
        try:
            start, end, kind = int(entity["start"]), int(entity["end"]), str(entity["label"])
        except (KeyError, TypeError, ValueError):
            raise StellarError(f"{where}: each entity needs start, end and label; got {entity!r}") from None
        covered = [w for w, (a, b) in enumerate(spans) if a < end and start < b]
        if not covered:
            raise StellarError(f"{where}: entity {entity!r} covers no word of the text")
        if any(tags[w] != "O" for w in covered):
            raise StellarError(f"{where}: entity {entity!r} overlaps another entity")
        tags[covered[0]] = f"B-{kind}"
        for w in covered[1:]:
            tags[w] = f"I-{kind}"
    return tags
