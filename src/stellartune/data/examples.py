"""From a `Table` to validated examples: pick the columns, check every cell, split off eval data."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import StellarError, some
from .columnar import Column
from .readers import Table

TEXT_NAMES = ("text", "sentence", "sentence1", "#1 String", "premise", "question1", "text_a", "question",
              "review", "content", "document", "tweet", "comment", "utterance", "query")
PAIR_NAMES = {"sentence1": "sentence2", "#1 String": "#2 String", "premise": "hypothesis",
              "question1": "question2", "text_a": "text_b", "question": "sentence", "sentence": "sentence2"}
LABEL_NAMES = ("label", "labels", "score", "Quality", "category", "class", "target", "gold_label", "y",
               "intent", "sentiment", "emotion", "emotions", "topic")
INTEGER = re.compile(r"^\s*-?\d+\s*$")
FLOAT = re.compile(r"^\s*-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?\s*$")


@dataclass
class Columns:
    text: str
    pair: str | None
    label: str | None

    def describe(self) -> str:
        parts = [f'text="{self.text}"'] + ([f'pair="{self.pair}"'] if self.pair else [])
        return ", ".join(parts + ([f'label="{self.label}"'] if self.label else []))


@dataclass
class Examples:
    """Texts (and second texts for pairs) with raw labels and where each came from: lists, or columns of a
    file in the store (`store.py`), read as lists are."""

    texts: Sequence[str]
    pairs: Sequence[str] | None
    labels: Sequence | None  # str (classification), list[str] (multi-label) or float (regression)
    positions: Sequence[str]  # "train.csv, line 7", for messages
    columns: Columns
    words: list[list[str]] | None = None  # token tasks: each text's words ...
    offsets: list[list[tuple[int, int]]] | None = None  # ... and their character spans in the text
    note: str | None = None  # said in the log: where they are stored (data/store.py), or that they were reused
    store: object = None  # the store.Store they are read from (their token ids are stored there too); None: in memory

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> "Examples":
        """Some examples, in the order given (stored columns: a view, not a copy)."""
        return replace(self, **{name: picked(getattr(self, name), indices)
                                for name in ("texts", "pairs", "labels", "positions", "words", "offsets")})


def picked(values: Sequence | None, indices) -> Sequence | None:
    """The values at some indices, in the order given: of a stored column, a view."""
    if values is None:
        return None
    return values.take(indices) if isinstance(values, Column) else [values[i] for i in indices]


def remembered(examples: Examples, kind: str, settings: str | None, compute: Callable[[], dict[str, np.ndarray]]
               ) -> dict[str, np.ndarray]:
    """What `compute` returns from the examples and `settings` (arrays by name): kept in the examples' store,
    and read back by the next run, when they are stored (and `settings` is not None); else computed."""
    if settings is None or examples.store is None or not isinstance(examples.texts, Column):
        return compute()
    return examples.store.remembered(kind, f"{examples.texts.identity()}|{settings}", compute)


def distinct_labels(labels: Sequence) -> Sequence:
    """Labels whose names together are the names of all `labels` (stored ones without a Python object per row:
    each distinct label, or of lists of names each distinct name as a one-name list)."""
    return labels.distinct() if isinstance(labels, Column) else labels


def all_labeled(labels: Sequence | None) -> bool:
    """Whether every example has a label."""
    if isinstance(labels, Column):
        return labels.whole().null_count == 0
    return labels is not None and all(label is not None for label in labels)


def label_indices(labels: Sequence, names: list[str]) -> np.ndarray:
    """Each label's position in `names` (every label must be one of them)."""
    if isinstance(labels, Column):
        return pc.index_in(labels.whole(), value_set=pa.array(names, type=labels.array.type)).to_numpy().astype(np.int64)
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[label] for label in labels], dtype=np.int64)


def as_numbers(labels: Sequence) -> np.ndarray:
    """Numeric labels as one array."""
    # a copy (astype): a stored column is read-only memory, which torch does not take
    return labels.whole().to_numpy().astype(np.float64) if isinstance(labels, Column) else np.asarray(labels, dtype=np.float64)


def resolve_columns(table: Table, text=None, pair=None, label=None, need_label=True) -> Columns:
    """Use the named columns, else well-known names, else (headerless files) guess from content."""
    for name, kind in ((text, "text"), (pair, "text pair"), (label, "label")):
        if name not in (None, "none") and name not in table.columns:
            raise StellarError(f"{table.source}: no {kind} column {name!r}; columns found: {some(table.columns, 12)}")
    headerless = all(c.isdigit() for c in table.columns)
    text = text or first_present(TEXT_NAMES, table.columns) or (headerless and longest_column(table))
    if not text:
        raise StellarError(f"{table.source}: cannot tell which column holds the text; columns found: "
                           f"{some(table.columns, 12)}; name it with --text-column")
    if pair == "none":
        pair = None
    elif pair is None and PAIR_NAMES.get(text) in table.columns:
        pair = PAIR_NAMES[text]
    used = {text, pair}
    if label is None:
        label = first_present([n for n in LABEL_NAMES if n not in used], table.columns)
        if label is None and headerless:
            label = fewest_values_column(table, exclude=used)
    if label is None and need_label:
        raise StellarError(f"{table.source}: cannot tell which column holds the labels; columns found: "
                           f"{some(table.columns, 12)}; name it with --label-column")
    return distinct_columns(table, Columns(text, pair, label))


def distinct_columns(table: Table, columns: Columns) -> Columns:
    """A column used twice would train a model to read its own label (or compare a text with itself)."""
    roles = [(role, name) for role, name in (("text", columns.text), ("text pair", columns.pair),
                                             ("label", columns.label)) if name is not None]
    for i, (role, name) in enumerate(roles):
        for other, other_name in roles[:i]:
            if name == other_name:
                raise StellarError(f"{table.source}: column {name!r} is both the {other} and the {role} column; "
                                   f"they must differ (columns found: {some(table.columns, 12)})")
    return columns


def first_present(names, columns):
    lowered = {c.lower(): c for c in columns}
    return next((lowered[n.lower()] for n in names if n.lower() in lowered), None)


def longest_column(table: Table) -> str:
    sample = table.rows[:200]
    return max(table.columns, key=lambda c: sum(len(str(r.get(c, ""))) for r in sample))


def fewest_values_column(table: Table, exclude) -> str | None:
    candidates = [c for c in table.columns if c not in exclude]
    return min(candidates, key=lambda c: len({str(r.get(c)) for r in table.rows}), default=None)


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or \
        (isinstance(value, str) and not value.strip())


def absence(row: dict, column: str) -> str:
    """Why a cell counts as missing when the file shows something there (JSON null, NaN, no field)."""
    if column not in row:
        return " (no such field in this record)"
    value = row[column]
    return " (null)" if value is None else " (NaN)" if isinstance(value, float) else ""


def build_examples(table: Table, columns: Columns, label_kind: str, delimiter: str, need_label=True) -> Examples:
    """Check every cell (empty text, missing label, label of the wrong kind) and parse labels as
    `label_kind`: single (one class name), list (several, or a `delimiter`-joined cell) or number."""
    texts, pairs, labels = [], [] if columns.pair else None, [] if columns.label else None
    for i, row in enumerate(table.rows):
        texts.append(text_cell(table, i, row, columns.text))
        if columns.pair:
            pairs.append(text_cell(table, i, row, columns.pair))
        if columns.label:
            value = row.get(columns.label)
            if is_missing(value):
                if need_label:
                    raise StellarError(f"{table.locate(i, columns.label)}: missing label{absence(row, columns.label)}")
                labels.append(None)
            else:
                labels.append(parse_label(table, i, columns.label, value, label_kind, delimiter))
    positions = [f"{table.source}, {p}" for p in table.positions]
    return Examples(texts, pairs, labels, positions, columns)


def text_cell(table: Table, i: int, row: dict, column: str) -> str:
    value = row.get(column)
    if is_missing(value):
        raise StellarError(f"{table.locate(i, column)}: empty text{absence(row, column)}")
    if not isinstance(value, str):
        raise StellarError(f"{table.locate(i, column)}: expected text, got {type(value).__name__} {value!r}")
    if fault := unicode_fault(value):
        raise StellarError(f"{table.locate(i, column)}: {fault}")
    return value.strip()


def unicode_fault(text: str) -> str | None:
    """Why a string is not text a tokenizer takes (a lone surrogate such as JSON's "\\ud800"), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return (f"not valid Unicode text: a lone surrogate U+{ord(text[e.start]):04X} at character {e.start} "
                "(half of a pair; write the whole character)")
    return None


def parse_label(table: Table, i: int, column: str, value, label_kind: str, delimiter: str):
    if label_kind == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and FLOAT.match(value):
            return float(value)
        raise StellarError(f"{table.locate(i, column)}: regression label must be a number, got {value!r}")
    if label_kind == "list":
        parts = value if isinstance(value, (list, tuple)) else str(value).split(delimiter)
        parts = [str(p).strip() for p in parts if str(p).strip()]
        if not parts:
            raise StellarError(f"{table.locate(i, column)}: missing label")
        return parts
    if isinstance(value, (list, tuple, dict)):
        raise StellarError(f"{table.locate(i, column)}: a list of labels needs --task multi-label")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def label_kind_of(table: Table, label_column: str, delimiter: str) -> tuple[str, str]:
    """How the label cells look, and why: lists or delimited cells -> list; numbers with a fractional
    part written -> number; anything else -> single. Stops where the cells are very likely a mistake
    (classes written as decimals, numbers mixed with words), naming the --task that settles it."""
    located = [(i, r.get(label_column)) for i, r in enumerate(table.rows) if not is_missing(r.get(label_column))]
    values = [v for _, v in located]
    where = f'{table.source}, column "{label_column}"'
    if any(isinstance(v, (list, tuple)) for v in values):
        return "list", "the label cells hold lists"
    text = [str(v).strip() for v in values]
    joined = next((t for t in text if delimiter in t), None)
    if joined is not None:
        return "list", f"label cells hold several names joined by {delimiter!r}, e.g. {joined!r} (--label-delimiter)"
    numeric = [bool(FLOAT.match(t)) for t in text]
    distinct = list(dict.fromkeys(text))
    if any(numeric) and not all(numeric):
        row, word = located[numeric.index(False)]
        numbers = sorted({t for t, is_number in zip(text, numeric) if is_number})
        raise StellarError(f"{table.locate(row, label_column)}: labels mix numbers ({some(numbers, 3)}) and words "
                           f"({word!r}); make them consistent, or say --task classification if every one is a class "
                           "name")
    if not all(numeric):
        return "single", f"{len(distinct)} distinct label names"
    if all(INTEGER.match(t) for t in text) or all(isinstance(v, int) for v in values):
        return "single", (f"{len(distinct)} distinct whole-number labels, each a class "
                          "(--task regression if they are scores)")
    numbers = {float(t) for t in text}
    if len(numbers) == 2 or (2 < len(numbers) <= 10 and all(n.is_integer() for n in numbers)):
        raise StellarError(f"{where}: the labels are {len(numbers)} distinct numbers written as decimals "
                           f"({some(distinct, 4)}): classes or scores? Say --task classification or --task regression")
    return "number", (f"{len(numbers)} distinct numeric labels from {min(numbers):g} to {max(numbers):g} "
                      "(--task classification if they are classes)")


def split_examples(examples: Examples, fraction: float, seed: int, stratify: bool,
                   names_of: Callable[[object], set] | None = None):
    """Seeded split; stratified by label when every class has at least two examples. An example whose
    label names (`names_of`) no training example has stays in training: a held-out example the model
    never had an output for would be scored as the user's mistake. Returns (training, evaluation,
    the names kept in training that way)."""
    source = examples.positions[0].rsplit(", ", 1)[0]
    if int(len(examples) * fraction) < 1:
        raise StellarError(f"{source}: {len(examples)} rows are too few to hold out {fraction:.0%} for evaluation; "
                           "give --eval data")
    split = remembered(examples, "split", f"{fraction}|{seed}|{stratify}",
                       lambda: drawn_split(examples, fraction, seed, stratify, names_of))
    kept = [str(name) for name in split["kept"]]
    if not len(split["eval"]):
        raise StellarError(f"{source}: no example can be held out for evaluation: each has a label "
                           f"({some(kept, 4)}) seen in no other example; give --eval data")
    return examples.subset(split["train"]), examples.subset(split["eval"]), kept


def drawn_split(examples: Examples, fraction: float, seed: int, stratify: bool, names_of) -> dict[str, np.ndarray]:
    """split_examples' rows: {"train": rows, "eval": rows, "kept": the label names kept in training}."""
    from sklearn.model_selection import train_test_split

    strata = None
    if stratify and examples.labels is not None:
        strata = stratum_codes(examples.labels)
        counts = np.bincount(strata)
        if counts.min() < 2 or len(counts) > fraction * len(examples):
            strata = None
    train_idx, eval_idx = train_test_split(np.arange(len(examples)), test_size=fraction, random_state=seed,
                                           stratify=strata)
    kept, moved = names_only_in(examples, np.sort(train_idx), np.sort(eval_idx), names_of)
    return {"train": np.sort(np.concatenate([train_idx, moved])), "eval": np.setdiff1d(eval_idx, moved),
            "kept": np.array(sorted(kept), dtype=str)}


def stratum_codes(labels: Sequence) -> np.ndarray:
    """Each label as its rank among the distinct labels (sorted): the classes scikit-learn stratifies by."""
    if isinstance(labels, Column):
        return labels.codes()
    return np.unique(np.asarray(labels), return_inverse=True)[1]


def names_only_in(examples: Examples, train_idx: np.ndarray, eval_idx: np.ndarray, names_of) -> tuple[set, np.ndarray]:
    """The label names (`names_of` one label) that no training example has, and the held-out examples that
    have them, in order (each stays in training; the first one of a name makes it seen)."""
    if examples.labels is None or names_of is None:
        return set(), np.zeros(0, dtype=np.int64)
    seen = set()
    for label in distinct_labels(picked(examples.labels, train_idx)):
        seen |= names_of(label)
    kept, moved = set(), []
    for i, label in zip(eval_idx, picked(examples.labels, eval_idx)):
        if not names_of(label) <= seen:
            kept |= names_of(label) - seen
            seen |= names_of(label)
            moved.append(i)
    return kept, np.asarray(moved, dtype=np.int64)
