"""Read CSV, TSV, JSON, JSONL, Parquet and Hugging Face datasets into one `Table`.

Every reader keeps where each row came from (a file line or a record number), so that later
checks can say "train.csv, line 12, column "text": empty text" instead of failing deep inside.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..errors import StellarError, some

csv.field_size_limit(1 << 30)
DATASET_BATCH = 1000  # rows of a Hugging Face dataset read at a time
# characters of text a chunk of rows holds at most: long documents come in fewer rows a chunk, as the heap a
# chunk's strings leave behind stays with the process (1M IMDB reviews read 100,000 at a time kept 1.05 GB)
CHUNK_TEXT = 16 << 20


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
    return next(read_chunks(source, rows=None))


def read_chunks(source, rows: int | None) -> Iterator[Table]:
    """`source` as tables of at most `rows` rows (all in one when None), read as they are needed, so that
    memory stays flat on long inputs: CSV, TSV, .txt, JSONL, Parquet and stdin ("-") stream; a JSON
    document or a dataset comes as one table."""
    if isinstance(source, str) and source == "-":
        yield from lines_chunks(text_lines(sys.stdin.buffer, "stdin"), "stdin", rows, "stdin: no text to predict (one text per line)")
        return
    if not isinstance(source, (str, Path)):
        yield Table.from_records(source)
        return
    text = str(source)
    if text.startswith("hf:") or is_saved_dataset(text):
        yield from dataset_tables(load_dataset(text), text, rows)
        return
    path = Path(text)
    if not path.exists():
        raise StellarError(f"{path}: file not found")
    if path.is_dir():
        raise StellarError(f"{path}: is a folder but not a saved Hugging Face dataset (no dataset_info.json or dataset_dict.json)")
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise StellarError(f"{path}: unknown file type {suffix!r}; use {FILE_TYPES}")
    yield from READERS[suffix](path, rows)


def is_data_file(source) -> bool:
    """Whether `source` names a file of a format stellartune reads (not stdin, a dataset or records)."""
    if not isinstance(source, (str, Path)) or str(source) == "-" or str(source).startswith("hf:"):
        return False
    return Path(source).is_file() and Path(source).suffix.lower() in READERS


def content_files(source) -> list[Path] | None:
    """The files whose bytes are all of `source`'s content (what the store keys its copy by): a data file, or
    the Arrow files of a Hugging Face dataset, saved or downloaded; None where there are none (records, stdin,
    a dataset held in memory)."""
    if isinstance(source, (str, Path)) and str(source) != "-" and Path(source).is_file():  # any format: CoNLL too
        return [Path(source)]
    if not isinstance(source, (str, Path)) or not (str(source).startswith("hf:") or is_saved_dataset(str(source))):
        return None
    files = [Path(f["filename"]) for f in load_dataset(str(source)).cache_files]
    return files or None


def no_data_rows(table: Table) -> StellarError:
    header = f" (only a header: {some(table.columns, 12)})" if table.columns else ""
    return StellarError(f"{table.source}: no data rows{header}")


def tables_of(source: str, columns: list[str] | None, numbered_rows: Iterable[tuple[dict, str]],
              rows: int | None, empty: str | None = None) -> Iterator[Table]:
    """(row, position) pairs as tables of at most `rows` rows and about CHUNK_TEXT characters of text; `columns`
    None: each table's keys in order. A source without data rows stops with one line (`empty`, or one that
    names the header)."""
    chunk: list[tuple[dict, str]] = []
    first, text = True, 0

    def table() -> Table:
        names = columns if columns is not None else list(dict.fromkeys(k for r, _ in chunk for k in r))
        return Table(source, names, [r for r, _ in chunk], [p for _, p in chunk])

    for item in numbered_rows:
        chunk.append(item)
        text += text_size(item[0])
        if rows and (len(chunk) == rows or text >= CHUNK_TEXT):
            yield table()
            chunk, first, text = [], False, 0
    if first and not chunk:
        raise StellarError(empty) if empty else no_data_rows(table())
    if chunk:
        yield table()


def text_size(row: dict) -> int:
    """About how much text a row holds: its strings' characters (a list counts its items)."""
    try:
        return sum(map(len, row.values()))  # the usual case, every value a string: the fast way
    except TypeError:  # a number or None among them
        return sum(len(value) for value in row.values() if isinstance(value, (str, list)))


def decode_utf8(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise StellarError(f"{path}: file is empty")
    return decode_utf8_bytes(data, str(path))


# Byte order marks that say how a file is encoded (UTF-32's first: its LE mark starts with UTF-16's)
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))


def encoding_of(start: bytes) -> str:
    return next((name for mark, name in BOMS if start.startswith(mark)), "utf-8-sig")


def decode_utf8_bytes(data: bytes, source: str) -> str:
    """UTF-8 text (a UTF-8 BOM is dropped); UTF-16 or UTF-32 when a byte order mark says so (Excel's
    "Unicode text" export), since the mark leaves no doubt."""
    encoding = encoding_of(data)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].decode(encoding, errors="replace").count("\n") + 1
        raise not_encoded(source, line, encoding, data[e.start], e.start) from None


def not_encoded(source: str, line: int, encoding: str, byte: int, offset: int) -> StellarError:
    what = "UTF-8 text" if encoding == "utf-8-sig" else f"valid {encoding.upper()}, as its byte order mark says"
    return StellarError(f"{source}, line {line}: not {what} (byte 0x{byte:02x} at offset {offset}); "
                        "re-save it as UTF-8")


def text_lines(handle: BinaryIO, source: str) -> Iterator[str]:
    """The lines of a binary stream as text, line ends kept, decoded one at a time (UTF-8; UTF-16 and
    UTF-32, rare and marked by a BOM, are decoded whole)."""
    offset = 0
    for number, raw in enumerate(handle, start=1):
        if number == 1 and encoding_of(raw) != "utf-8-sig":
            lines = decode_utf8_bytes(raw + handle.read(), source).split("\n")
            yield from [line + "\n" for line in lines[:-1]] + lines[-1:]
            return
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as e:
            raise not_encoded(source, number, "utf-8-sig", raw[e.start], offset + e.start) from None
        offset += len(raw)


def file_lines(path: Path) -> Iterator[str]:
    with open(path, "rb") as handle:
        yield from text_lines(handle, str(path))


def head_text(path: Path, size: int = 1 << 16) -> str:
    """The start of a file as text (undecodable bytes replaced), to recognise its format by content."""
    with open(path, "rb") as handle:
        data = handle.read(size)
    encoding = next((name for mark, name in BOMS if data.startswith(mark)), "utf-8-sig")
    return data.decode(encoding, errors="replace")


def read_text_lines(path: Path, rows: int | None) -> Iterator[Table]:
    """A .txt file: one text per line (column "text"), or a TSV when every line has the same number of
    tabs (MRPC's original files, spreadsheet "tab-delimited text" exports)."""
    tabs = {line.count("\t") for line in file_lines(path) if line.strip()}
    if not tabs:
        raise StellarError(f"{path}: file is empty")
    if len(tabs) == 1 and tabs != {0}:
        return read_delimited(path, rows)
    return lines_chunks(file_lines(path), str(path), rows, f"{path}: file is empty")


def lines_chunks(lines: Iterable[str], source: str, rows: int | None, empty: str) -> Iterator[Table]:
    """One row per line, column "text": .txt files and stdin. No header is guessed. A blank line is a row
    too (refused as an empty text, with its line number), so that prediction N is always line N."""
    numbered = (({"text": line.strip()}, f"line {number}") for number, line in enumerate(lines, start=1))
    return tables_of(source, ["text"], numbered, rows, empty)


def read_delimited(path: Path, rows: int | None) -> Iterator[Table]:
    """CSV (quoted fields allowed) or TSV (tabs, no quoting: GLUE files contain bare quotes)."""
    tsv = path.suffix.lower() in (".tsv", ".txt")  # .txt: tab-separated lines (read_text_lines)
    records = read_records(path, tsv)
    first = next(records, None)
    if first is None:
        raise StellarError(f"{path}: file is empty")
    header = first[0] if looks_like_header(first[0]) else None
    if header:
        check_distinct_names(header, path, first[1])
    columns = [c.strip() for c in header] if header else [str(i) for i in range(len(first[0]))]

    def numbered_rows():
        for record, line in (records if header else itertools.chain([first], records)):
            if len(record) != len(columns):
                hint = "; put text that contains commas in double quotes" if len(record) > len(columns) and not tsv else ""
                raise StellarError(f"{path}, line {line}: malformed row: {len(record)} fields, expected "
                                   f"{len(columns)} ({', '.join(columns)}){hint}")
            yield dict(zip(columns, record)), f"line {line}"

    return tables_of(str(path), columns, numbered_rows(), rows)


def read_records(path: Path, tsv: bool) -> Iterator[tuple[list[str], int]]:
    """The non-blank records, each with the line it starts on (a quoted field may span lines)."""
    reader = csv.reader(file_lines(path), delimiter="\t" if tsv else ",",
                        quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL, strict=not tsv)
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            problem = ("a quoted field in this row is never closed (the quote runs to the end of the file)"
                       if "end of data" in str(e) else f"malformed CSV ({e})")
            raise StellarError(f"{path}, line {start}: {problem}") from None
        # Only blank lines are skipped: a row of empty cells is data, and fails later as empty text.
        if record and (len(record) > 1 or record[0].strip()):
            yield record, start


NUMBER = re.compile(r"^\s*-?\d+(\.\d*)?\s*$")


def looks_like_header(record: list[str]) -> bool:
    """A first row of short, non-numeric names is a header (GLUE, most exports).

    Headerless files (AG News, SMS Spam, GoEmotions) start with a number or a long text.
    """
    return all(c.strip() and not NUMBER.match(c) and len(c.strip()) <= 40 for c in record)


def check_distinct_names(names, path, line: int) -> None:
    """A name given twice would leave one of its columns unreachable (and dict rows keep only one)."""
    seen = {}
    for number, name in enumerate((n.strip() for n in names), start=1):
        if name in seen:
            raise StellarError(f"{path}, line {line}: the header names column {name!r} twice (fields {seen[name]} "
                               f"and {number}); give each column its own name")
        seen[name] = number


def read_json(path: Path, rows: int | None) -> Iterator[Table]:
    """A JSON document, read whole (one table): a list of records, {"data": [...]} or columns."""
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
    yield from records_tables(path, ((r, f"record {i + 1}") for i, r in enumerate(data)), None)


def read_jsonl(path: Path, rows: int | None) -> Iterator[Table]:
    def numbered_records():
        # split on "\n" only (file_lines): JSON strings may hold U+2028 and other characters splitlines breaks on.
        for number, line in enumerate(file_lines(path), start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line, object_pairs_hook=distinct_keys), f"line {number}"
            except json.JSONDecodeError as e:
                raise StellarError(f"{path}, line {number}: invalid JSON ({e.msg})") from None
            except DuplicateKey as e:
                raise StellarError(f"{path}, line {number}: the field {e.args[0]!r} appears twice; give each field "
                                   "its own name") from None

    return records_tables(path, numbered_records(), rows)


class DuplicateKey(Exception):
    pass


def distinct_keys(pairs: list[tuple]) -> dict:
    """json's object hook: Python's json keeps the last of repeated keys without a word."""
    record = dict(pairs)
    if len(record) != len(pairs):
        raise DuplicateKey(next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i])))
    return record


def records_tables(path, numbered_records: Iterable[tuple[object, str]], rows: int | None) -> Iterator[Table]:
    """(record, position) pairs as tables; every record must be an object with named fields."""
    def checked():
        for record, position in numbered_records:
            if not isinstance(record, dict):
                raise StellarError(f"{path}, {position}: expected an object with named fields, got "
                                   f"{type(record).__name__}")
            yield record, position

    return tables_of(str(path), None, checked(), rows)


def read_parquet(path: Path, rows: int | None) -> Iterator[Table]:
    import pyarrow.parquet as pq

    def numbered_rows():
        try:
            batches = pq.ParquetFile(path).iter_batches(batch_size=rows or 65536)
            number = 0
            for batch in batches:
                for row in batch.to_pylist():
                    number += 1
                    yield row, f"row {number}"
        except Exception as e:  # pyarrow raises several types for corrupt files
            raise StellarError(f"{path}: cannot read Parquet ({str(e).splitlines()[0]})") from None

    return records_tables(path, numbered_rows(), rows)


def is_saved_dataset(text: str) -> bool:
    folder = Path(text.split(":")[0])
    return folder.is_dir() and any((folder / n).exists() for n in ("dataset_info.json", "dataset_dict.json", "state.json"))


def dataset_tables(dataset, source: str, rows: int | None) -> Iterator[Table]:
    """A Hugging Face dataset's rows as tables, read a batch of columns at a time (not an object per value)."""
    def numbered_rows():
        for start, batch in zip(itertools.count(0, DATASET_BATCH), dataset.iter(batch_size=DATASET_BATCH)):
            for offset, values in enumerate(zip(*batch.values())):
                yield dict(zip(batch, values)), f"record {start + offset + 1}"

    return records_tables(source, numbered_rows(), rows)


def load_dataset(text: str):
    """A saved folder (FOLDER or FOLDER:SPLIT) or hf:NAME[@CONFIG][:SPLIT] as one Hugging Face dataset."""
    return load_hub_dataset(text) if text.startswith("hf:") else load_saved_dataset(text)


def load_saved_dataset(text: str):
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
    return loaded


def load_hub_dataset(text: str):
    """hf:NAME[@CONFIG][:SPLIT], e.g. hf:nyu-mll/glue@sst2:train (needs network or the HF cache)."""
    import datasets

    spec = text[3:]
    spec, _, split = spec.partition(":")
    name, _, config = spec.partition("@")
    try:
        return datasets.load_dataset(name, config or None, split=split or "train")
    except Exception as e:  # offline, unknown name or split: datasets raises many types
        raise StellarError(f"{text}: cannot load Hugging Face dataset ({str(e).splitlines()[0]})") from None


READERS = {".csv": read_delimited, ".tsv": read_delimited, ".txt": read_text_lines, ".json": read_json,
           ".jsonl": read_jsonl, ".ndjson": read_jsonl, ".parquet": read_parquet}
FILE_TYPES = (".csv, .tsv, .txt (one text per line), .json, .jsonl, .parquet, or for NER a CoNLL file (a token and "
              "its tag per line, blank lines between sentences: .conll, .iob, .bio, .txt or any other name)")
