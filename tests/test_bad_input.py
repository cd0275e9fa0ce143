"""Bad input gets one clear line naming the file, the line and the column; good input is read whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import data_file

from stellartune.cli import main
from stellartune.data.examples import (
    Columns,
    resolve_columns,
)
from stellartune.data.readers import read_table
from stellartune.errors import StellarError
from stellartune.tasks import examples_for, problem_from_labels


def write(path: Path, content) -> Path:
    """Text or bytes as they are; for .parquet, a list of records."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(content), path)
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def load_examples(source, **columns):
    """What `stellartune train` does with a data file before it loads a model."""
    table = read_table(source)
    chosen = resolve_columns(table, **columns)
    problem = problem_from_labels(table, chosen.label, ",")
    return examples_for(problem, table, chosen)


def error_message(call, *args, **kwargs) -> str:
    with pytest.raises(StellarError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, f"not one line: {message!r}"
    return message


def assert_mentions(message: str, *parts: str) -> None:
    missing = [part for part in parts if part not in message]
    assert not missing, f"{missing} not in {message!r}"


BAD_FILES = {
    "empty.csv": (b"", ["file is empty"]),
    "header_only.csv": ("text,label\n", ["no data rows", "text, label"]),
    "latin1.csv": (b"text,label\ngood,1\ncaf\xe9,0\n", ["line 3", "not UTF-8", "0xe9"]),
    "extra_field.csv": ("text,label\na,1\nb,0,x\n", ["line 3", "malformed row", "3 fields, expected 2", "text, label"]),
    "short_row.csv": ("text,label\na,1\nb\nc,0\n", ["line 3", "malformed row", "1 fields, expected 2"]),
    "open_quote.csv": ('text,label\na,1\n"never closed,0\nc,1\n', ["line 3", "quoted field", "never closed"]),
    "bad.jsonl": ('{"text": "a", "label": "x"}\n{"text": "b", "label": }\n', ["line 2", "invalid JSON"]),
    "bad.json": ('[{"text": "a", "label": "x"},\n {"text": "b",\n  "label": }]', ["line 3", "invalid JSON"]),
    "not_object.jsonl": ('{"text": "a", "label": "x"}\n\n["b", "y"]\n', ["line 3", "expected an object"]),
    "empty_text.csv": ("text,label\na,1\n  ,0\n", ["line 3", 'column "text"', "empty text"]),
    "comma_row.csv": ("text,label\na,1\n,\nb,0\n", ["line 3", 'column "text"', "empty text"]),
    "null_text.jsonl": ('{"text": "a", "label": "x"}\n\n{"text": null, "label": "y"}\n',
                        ["line 3", 'column "text"', "empty text (null)"]),
    "nan_text.json": ('[{"text": "a", "label": "x"}, {"text": NaN, "label": "y"}]',
                      ["record 2", 'column "text"', "empty text (NaN)"]),
    "null_text.parquet": ([{"text": "a", "label": "x"}, {"text": None, "label": "y"}],
                          ["row 2", 'column "text"', "empty text (null)"]),
    "empty_label.csv": ("text,label\na,1\nb,\n", ["line 3", 'column "label"', "missing label"]),
    "nan_label.parquet": ([{"text": "a", "label": 1.5}, {"text": "b", "label": float("nan")}],
                          ["row 2", 'column "label"', "missing label (NaN)"]),
    "no_label_field.jsonl": ('{"text": "a", "label": "x"}\n{"text": "b"}\n',
                             ["line 2", 'column "label"', "missing label", "no such field"]),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_file_names_file_line_and_column(tmp_path, name):
    content, expected = BAD_FILES[name]
    message = error_message(load_examples, write(tmp_path / name, content))
    assert_mentions(message, name, *expected)


@pytest.mark.parametrize("header, columns, expected", [
    ("text,label", {"text": "txt"}, ["no text column 'txt'", "columns found: text, label"]),
    ("sentence1,sentence2,label", {"pair": "second"}, ["no text pair column 'second'", "sentence1, sentence2, label"]),
    ("text,label", {"label": "lbl"}, ["no label column 'lbl'", "columns found: text, label"]),
    ("body,label", {}, ["which column holds the text", "columns found: body, label", "--text-column"]),
    ("text,verdict", {}, ["which column holds the labels", "columns found: text, verdict", "--label-column"]),
])
def test_missing_or_misnamed_column_lists_columns_found(tmp_path, header, columns, expected):
    row = ",".join("x" for _ in header.split(","))
    path = write(tmp_path / "train.csv", f"{header}\n{row}\n")
    message = error_message(resolve_columns, read_table(path), **columns)
    assert_mentions(message, "train.csv", *expected)


def labeled_csv(path: Path, labels: list[str]) -> Path:
    return write(path, "text,label\n" + "".join(f"text {i},{label}\n" for i, label in enumerate(labels)))


def test_eval_label_unseen_in_training(tmp_path):
    from stellartune.tasks import ClassificationTask

    task = ClassificationTask.from_examples("classification", load_examples(labeled_csv(tmp_path / "train.csv", ["a", "b"])))
    dev = load_examples(labeled_csv(tmp_path / "dev.csv", ["a", "c"]))
    message = error_message(task.check_known_labels, dev)
    assert_mentions(message, "dev.csv", "line 3", 'column "label"', "'c'", "never seen in training", "a, b")


def test_single_class_in_training(tmp_path):
    from stellartune.tasks import ClassificationTask

    train = load_examples(labeled_csv(tmp_path / "train.csv", ["pos", "pos", "pos"]))
    message = error_message(ClassificationTask.from_examples, "classification", train)
    assert_mentions(message, "train.csv", "'pos'", "at least two classes")


def test_unknown_model_names_it_and_the_aliases(monkeypatch):
    import huggingface_hub.constants

    from stellartune.models.registry import resolve_model

    # A bare name is looked up on the hub; offline that retries for about 30 s before failing.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    message = error_message(resolve_model, "no-such-model-xyz")
    assert_mentions(message, "unknown model", "no-such-model-xyz", "minilm", "mpnet-base")


def test_cli_fails_on_bad_data_with_one_line_before_loading_a_model(tmp_path, monkeypatch, capsys):
    import stellartune.training.recipe as recipe

    def no_model(name):
        raise AssertionError("the model was resolved before the data was checked")

    monkeypatch.setattr(recipe, "resolve_model", no_model)
    train = write(tmp_path / "train.csv", "text,label\na,1\nb,\n")
    code = main(["train", "--train", str(train), "--output", str(tmp_path / "run"), "--no-progress"])
    stderr = capsys.readouterr().err
    assert code == 2
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    assert_mentions(stderr, "train.csv", "line 3", 'column "label"', "missing label")


GOOD_FILES = {  # content, and the line of each row as an editor shows it
    "blank_line.csv": ("text,label\na,1\n\nb,0\nc,1\n", ["line 2", "line 4", "line 5"]),
    "multiline_cell.csv": ('text,label\n"two\nlines",1\nb,0\n', ["line 2", "line 4"]),
    "crlf.csv": ("text,label\r\na,1\r\n\r\nb,0\r\n", ["line 2", "line 4"]),
    "blank_line.jsonl": ('{"text": "a"}\n\n{"text": "b\u2028c"}\n', ["line 1", "line 3"]),
}


@pytest.mark.parametrize("name", GOOD_FILES)
def test_only_blank_lines_are_skipped(tmp_path, name):
    content, positions = GOOD_FILES[name]
    table = read_table(write(tmp_path / name, content))
    assert table.positions == positions
    assert len(table.rows) == len(positions)


def test_every_format_reads_the_same_rows(tmp_path):
    """CSV, TSV, JSON, JSONL, Parquet and a saved Hugging Face dataset give the same table."""
    import datasets

    records = [{"text": "good, really", "label": "pos"}, {"text": 'a "bad" one', "label": "neg"}]
    files = [
        write(tmp_path / "d.csv", 'text,label\n"good, really",pos\n"a ""bad"" one",neg\n'),
        write(tmp_path / "d.tsv", 'text\tlabel\ngood, really\tpos\na "bad" one\tneg\n'),
        write(tmp_path / "d.json", json.dumps(records)),
        write(tmp_path / "d.jsonl", "\n".join(map(json.dumps, records))),
        write(tmp_path / "d.parquet", records),
    ]
    datasets.Dataset.from_list(records).save_to_disk(str(tmp_path / "saved"))
    datasets.DatasetDict({"train": datasets.Dataset.from_list(records)}).save_to_disk(str(tmp_path / "dict"))
    for source in [*files, tmp_path / "saved", f"{tmp_path / 'dict'}:train"]:
        assert read_table(str(source)).rows == records, source
    assert_mentions(error_message(read_table, str(tmp_path / "dict")), "train", ":SPLIT")


@pytest.mark.parametrize("relative, rows, columns, chosen, task", [
    ("sst2/dev.tsv", 872, ["sentence", "label"], Columns("sentence", None, "label"), "classification"),
    ("mrpc/train.tsv", 3668, ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
     Columns("#1 String", "#2 String", "Quality"), "classification"),
    ("rte/train.tsv", 2490, ["index", "sentence1", "sentence2", "label"],
     Columns("sentence1", "sentence2", "label"), "classification"),
    ("stsb/train.tsv", 5749, ["index", "genre", "filename", "year", "old_index", "source1", "source2",
                              "sentence1", "sentence2", "score"], Columns("sentence1", "sentence2", "score"), "regression"),
    ("goemotions/train.tsv", 43410, ["0", "1", "2"], Columns("0", None, "1"), "multi-label"),
])
def test_real_data_reads_whole(relative, rows, columns, chosen, task):
    table = read_table(data_file(relative))
    assert (len(table.rows), table.columns) == (rows, columns)
    assert resolve_columns(table) == chosen
    assert problem_from_labels(table, chosen.label, ",") == task
    assert len(examples_for(task, table, chosen)) == rows
