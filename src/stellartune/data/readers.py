"""Read CSV, TSV, JSON, JSONL, Parquet and Hugging Face datasets into one `Table`.

Every reader keeps where each row came from (a file line or a record number), so that later
checks can say "train.csv, line 12, column "text": empty text" instead of failing deep inside.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StellarError, some

csv.field_size_limit(1 << 30)


@dataclass
class Table:
    """Rows of one data source, each a dict keyed by column name."""

    source: str
    columns: list[str]
    rows: list[dict]
    positions: list[str] = field(default_factory=list)  # "line 7" / "record 7", one per row

    def locate(self, index: int, column: str | None = None) -> str:
        """'train.csv, line 12, column "text"': the prefix of every error about one cell."""
        text = f"{self.source}, {self.positions[index]}"
        return text + (f', column "{column}"' if column is not None else "")

    @classmethod
    def from_records(cls, records, source: str = "<records>") -> "Table":
        """A table from a list of dicts or a pandas DataFrame (for the Python API)."""
        if hasattr(records, "to_dict"):
            records = records.to_dict("records")
        records = [dict(r) for r in records]
        if not records:
            raise StellarError(f"{source}: no rows")
        columns = list(dict.fromkeys(k for r in records for k in r))
        return cls(source, columns, records, [f"record {i + 1}" for i in range(len(records))])


def read_table(source) -> Table:
    """Read any supported source; `source` may also be a list of dicts or a DataFrame."""
    if not isinstance(source, (str, Path)):
        return Table.from_records(source)
    text = str(source)
    if text.startswith("hf:"):
        return read_hub_dataset(text)
    if is_saved_dataset(text):
        return read_saved_dataset(text)
    path = Path(text)
    if not path.exists():
        raise StellarError(f"{path}: file not found")
    if path.is_dir():
        raise StellarError(f"{path}: is a folder but not a saved Hugging Face dataset (no dataset_info.json or dataset_dict.json)")
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise StellarError(f"{path}: unknown file type {suffix!r}; use {FILE_TYPES}")
    table = READERS[suffix](path)
    if not table.rows:
        header = f" (only a header: {some(table.columns, 12)})" if table.columns else ""
        raise StellarError(f"{path}: no data rows{header}")
    return table


def decode_utf8(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise StellarError(f"{path}: file is empty")
    return decode_utf8_bytes(data, str(path))


# Byte order marks that say how a file is encoded (UTF-32's first: its LE mark starts with UTF-16's)
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))


def decode_utf8_bytes(data: bytes, source: str) -> str:
    """UTF-8 text (a UTF-8 BOM is dropped); UTF-16 or UTF-32 when a byte order mark says so (Excel's
    "Unicode text" export), since the mark leaves no doubt."""
    encoding = next((name for mark, name in BOMS if data.startswith(mark)), "utf-8-sig")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].decode(encoding, errors="replace").count("\n") + 1
        what = "UTF-8 text" if encoding == "utf-8-sig" else f"valid {encoding.upper()}, as its byte order mark says"
        raise StellarError(f"{source}, line {line}: not {what} (byte 0x{data[e.start]:02x} at offset {e.start}); "
                           "re-save it as UTF-8") from None


def head_text(path: Path, size: int = 1 << 16) -> str:
    """The start of a file as text (undecodable bytes replaced), to recognise its format by content."""
    with open(path, "rb") as handle:
        data = handle.read(size)
    encoding = next((name for mark, name in BOMS if data.startswith(mark)), "utf-8-sig")
    return data.decode(encoding, errors="replace")


def read_text_lines(path: Path) -> Table:
    """A .txt file: one text per line (column "text"), or a TSV when every line has the same number of
    tabs (MRPC's original files, spreadsheet "tab-delimited text" exports)."""
    text = decode_utf8(path)
    tabs = {line.count("\t") for line in text.split("\n") if line.strip()}
    if len(tabs) == 1 and tabs != {0}:
        return read_delimited(path)
    return lines_table(text, str(path))


def lines_table(text: str, source: str) -> Table:
    """One row per non-blank line, column "text": .txt files and stdin. No header is guessed."""
    rows, positions = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            rows.append({"text": line.strip()})
            positions.append(f"line {number}")
    return Table(source, ["text"], rows, positions)


def read_delimited(path: Path) -> Table:
    """CSV (quoted fields allowed) or TSV (tabs, no quoting: GLUE files contain bare quotes)."""
    tsv = path.suffix.lower() in (".tsv", ".txt")  # .txt: tab-separated lines (read_text_lines)
    records, lines = read_records(path, tsv)
    if not records:
        raise StellarError(f"{path}: file is empty")
    header = records[0] if looks_like_header(records) else None
    if header:
        check_distinct_names(header, path, lines[0])
    columns = [c.strip() for c in header] if header else [str(i) for i in range(len(records[0]))]
    body, body_lines = (records[1:], lines[1:]) if header else (records, lines)
    for record, line in zip(body, body_lines):
        if len(record) != len(columns):
            hint = "; put text that contains commas in double quotes" if len(record) > len(columns) and not tsv else ""
            raise StellarError(f"{path}, line {line}: malformed row: {len(record)} fields, expected {len(columns)} "
                               f"({', '.join(columns)}){hint}")
    rows = [dict(zip(columns, record)) for record in body]
    return Table(str(path), columns, rows, [f"line {n}" for n in body_lines])


def read_records(path: Path, tsv: bool) -> tuple[list[list[str]], list[int]]:
    """The non-blank records and the line each starts on (a quoted field may span lines)."""
    reader = csv.reader(io.StringIO(decode_utf8(path), newline=""), delimiter="\t" if tsv else ",",
                        quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL, strict=not tsv)
    records, lines = [], []
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return records, lines
        except csv.Error as e:
            problem = ("a quoted field in this row is never closed (the quote runs to the end of the file)"
                       if "end of data" in str(e) else f"malformed CSV ({e})")
            raise StellarError(f"{path}, line {start}: {problem}") from None
        # Only blank lines are skipped: a row of empty cells is data, and fails later as empty text.
        if record and (len(record) > 1 or record[0].strip()):
            records.append(record)
            lines.append(start)


NUMBER = re.compile(r"^\s*-?\d+(\.\d*)?\s*$")


def looks_like_header(records: list[list[str]]) -> bool:
    """A first row of short, non-numeric names is a header (GLUE, most exports).

    Headerless files (AG News, SMS Spam, GoEmotions) start with a number or a long text.
    """
    return all(c.strip() and not NUMBER.match(c) and len(c.strip()) <= 40 for c in records[0])


def check_distinct_names(names, path, line: int) -> None:
    """A name given twice would leave one of its columns unreachable (and dict rows keep only one)."""
    seen = {}
    for number, name in enumerate((n.strip() for n in names), start=1):
        if name in seen:
            raise StellarError(f"{path}, line {line}: the header names column {name!r} twice (fields {seen[name]} "
                               f"and {number}); give each column its own name")
        seen[name] = number


def read_json(path: Path) -> Table:
    text = decode_utf8(path)
    try:
        data = json.loads(text, object_pairs_hook=distinct_keys)
    except json.JSONDecodeError as e:
        raise StellarError(f"{path}, line {e.lineno}: invalid JSON ({e.msg})") from None
    except DuplicateKey as e:
        raise StellarError(f"{path}: a record names the field {e.args[0]!r} twice; give each field its own name") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if "data" in data and isinstance(data["data"], list):
            data = data["data"]
        elif len(lists) == len(data) and lists and len({len(v) for v in lists}) == 1:
            data = [dict(zip(data, values)) for values in zip(*lists)]  # column-oriented
        else:
            raise StellarError(f"{path}: expected a list of records, {{\"data\": [...]}} or columns of equal length")
    return records_table(path, data, "record")


def read_jsonl(path: Path) -> Table:
    records, positions = [], []
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and other characters it breaks on.
    for number, line in enumerate(decode_utf8(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line, object_pairs_hook=distinct_keys))
        except json.JSONDecodeError as e:
            raise StellarError(f"{path}, line {number}: invalid JSON ({e.msg})") from None
        except DuplicateKey as e:
            raise StellarError(f"{path}, line {number}: the field {e.args[0]!r} appears twice; give each field its "
                               "own name") from None
        positions.append(f"line {number}")
    return records_table(path, records, positions)


class DuplicateKey(Exception):
    pass


def distinct_keys(pairs: list[tuple]) -> dict:
    """json's object hook: Python's json keeps the last of repeated keys without a word."""
    record = dict(pairs)
    if len(record) != len(pairs):
        raise DuplicateKey(next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i])))
    return record


def records_table(path, records: list, positions: list[str] | str) -> Table:
    """`positions` is one per record, or a unit ("record", "row") to number them from 1."""
    if isinstance(positions, str):
        positions = [f"{positions} {i + 1}" for i in range(len(records))]
    for record, position in zip(records, positions):
        if not isinstance(record, dict):
            raise StellarError(f"{path}, {position}: expected an object with named fields, got {type(record).__name__}")
    columns = list(dict.fromkeys(k for r in records for k in r))
    return Table(str(path), columns, records, positions)


def read_parquet(path: Path) -> Table:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise StellarError(f"{path}: cannot read Parquet ({str(e).splitlines()[0]})") from None
    return records_table(path, table.to_pylist(), "row")


def is_saved_dataset(text: str) -> bool:
    folder = Path(text.split(":")[0])
    return folder.is_dir() and any((folder / n).exists() for n in ("dataset_info.json", "dataset_dict.json", "state.json"))


def dataset_table(dataset, source: str) -> Table:
    return records_table(source, dataset.to_list(), "record")


def read_saved_dataset(text: str) -> Table:
    """A folder written by `Dataset.save_to_disk` (FOLDER or FOLDER:SPLIT for a DatasetDict)."""
    import datasets

    folder, _, split = text.partition(":")
    loaded = datasets.load_from_disk(folder)
    if isinstance(loaded, datasets.DatasetDict):
        if not split:
            raise StellarError(f"{folder}: holds splits {', '.join(loaded)}; name one as {folder}:SPLIT")
        if split not in loaded:
            raise StellarError(f"{folder}: no split {split!r}; splits: {', '.join(loaded)}")
        loaded = loaded[split]
    return dataset_table(loaded, text)


def read_hub_dataset(text: str) -> Table:
    """hf:NAME[@CONFIG][:SPLIT], e.g. hf:nyu-mll/glue@sst2:train (needs network or the HF cache)."""
    import datasets

    spec = text[3:]
    spec, _, split = spec.partition(":")
    name, _, config = spec.partition("@")
    try:
        dataset = datasets.load_dataset(name, config or None, split=split or "train")
    except Exception as e:  # offline, unknown name or split: datasets raises many types
        raise StellarError(f"{text}: cannot load Hugging Face dataset ({str(e).splitlines()[0]})") from None
    return dataset_table(dataset, text)


READERS = {".csv": read_delimited, ".tsv": read_delimited, ".txt": read_text_lines, ".json": read_json,
           ".jsonl": read_jsonl, ".ndjson": read_jsonl, ".parquet": read_parquet}
FILE_TYPES = (".csv, .tsv, .txt (one text per line), .json, .jsonl, .parquet, or for NER a CoNLL file (a token and "
              "its tag per line, blank lines between sentences: .conll, .iob, .bio, .txt or any other name)")
