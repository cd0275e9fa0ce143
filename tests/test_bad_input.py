"""Bad input gets one clear line naming the file, the line and the column; good input is read whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import data_file

from stellartune.cli import main
from stellartune.config import TrainConfig
from stellartune.data.examples import (
    Columns,
    resolve_columns,
)
from stellartune.data.readers import read_table
from stellartune.errors import StellarError
from stellartune.tasks import task_class, task_from_labels


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
    task, _ = task_from_labels(table, chosen.label, ",")
    return task.build_examples(table, chosen)


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
    task = task_class("classification").from_examples(load_examples(labeled_csv(tmp_path / "train.csv", ["a", "b"])),
                                                      TrainConfig())
    dev = load_examples(labeled_csv(tmp_path / "dev.csv", ["a", "c"]))
    message = error_message(task.check_known_labels, dev)
    assert_mentions(message, "dev.csv", "line 3", 'column "label"', "'c'", "never seen in training", "a, b")


def test_single_class_in_training(tmp_path):
    train = load_examples(labeled_csv(tmp_path / "train.csv", ["pos", "pos", "pos"]))
    message = error_message(task_class("classification").from_examples, train, TrainConfig())
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
    assert task_from_labels(table, chosen.label, ",")[0].name == task
    assert len(task_class(task).build_examples(table, chosen)) == rows


def test_a_txt_file_is_one_text_per_line_with_no_header_guessed(tmp_path):
    lines = ["A truly brilliant film.", "Dull.", "", "I loved every minute of it, and so did my kids."]
    table = read_table(write(tmp_path / "new.txt", "\n".join(lines) + "\n"))
    assert [r["text"] for r in table.rows] == lines  # a blank line is a row (predict refuses it by number)
    assert table.positions == ["line 1", "line 2", "line 3", "line 4"]


def test_a_txt_file_with_the_same_tabs_on_every_line_is_a_tsv():
    table = read_table(data_file("mrpc/msr_paraphrase_train.txt"))  # MRPC as Microsoft distributes it
    assert table.columns == ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"] and len(table.rows) == 4076


@pytest.mark.parametrize("name, content, expected", [
    ("dup.csv", "text,label,text\na,1,b\nc,0,d\n", ["dup.csv, line 1", "names column 'text' twice", "fields 1 and 3"]),
    ("dup.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": "y", "text": "c"}\n',
     ["dup.jsonl, line 2", "field 'text' appears twice"]),
    ("dup.json", '[{"text": "a", "label": "x", "label": "y"}]', ["dup.json", "field 'label' twice"]),
])
def test_a_name_given_twice_stops_instead_of_reading_the_header_as_data(tmp_path, name, content, expected):
    assert_mentions(error_message(read_table, write(tmp_path / name, content)), *expected)


def test_text_and_label_must_be_different_columns(tmp_path):
    path = write(tmp_path / "one_column.csv", "A truly brilliant film that everyone should see.\nDull and long.\n")
    message = error_message(resolve_columns, read_table(path), label="0")
    assert_mentions(message, "one_column.csv", "column '0' is both the text and the label column")
    pairs = write(tmp_path / "pairs.csv", "sentence1,sentence2,label\na,b,1\n")
    assert_mentions(error_message(resolve_columns, read_table(pairs), pair="sentence1"),
                    "column 'sentence1' is both the text and the text pair column")


@pytest.mark.parametrize("name, content, expected", [
    ("decimals.csv", "text,label\na,1.0\nb,0.0\nc,1.0\n",
     ['decimals.csv, column "label"', "2 distinct numbers written as decimals", "--task classification",
      "--task regression"]),
    ("mixed.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n{"text": "c", "label": "negative"}\n',
     ['mixed.jsonl, line 3, column "label"', "mix numbers (0, 1) and words ('negative')", "--task classification"]),
])
def test_labels_that_are_probably_a_mistake_stop_naming_the_flag_that_settles_it(tmp_path, name, content, expected):
    path = write(tmp_path / name, content)
    assert_mentions(error_message(load_examples, path), *expected)
    # the flag it names settles it: the labels are read as classes
    table = read_table(path)
    examples = task_class("classification").build_examples(table, resolve_columns(table))
    assert len(set(examples.labels)) == (2 if name == "decimals.csv" else 3)


def test_the_task_read_from_the_labels_says_why():
    table = read_table(data_file("stsb/dev.tsv"))
    scores = {float(r["score"]) for r in table.rows}
    task, why = task_from_labels(table, "score", ",")
    assert (task.name, why) == ("regression", f"{len(scores)} distinct numeric labels from 0 to 5 (--task "
                                              "classification if they are classes)")
    task, why = task_from_labels(read_table(data_file("sst2/dev.tsv")), "label", ",")
    assert (task.name, why.split(",")[0]) == ("classification", "2 distinct whole-number labels")


def test_utf16_with_a_byte_order_mark_is_read_and_bad_utf16_named(tmp_path):
    content = "text,label\ncafé au lait,1\nnaïve,0\n"
    for encoding in ("utf-16", "utf-16-be", "utf-32"):
        data = content.encode(encoding)
        if not data.startswith((b"\xff\xfe", b"\xfe\xff")):
            data = {"utf-16-be": b"\xfe\xff"}[encoding] + data
        assert read_table(write(tmp_path / f"{encoding}.csv", data)).rows == read_table(
            write(tmp_path / "utf8.csv", content)).rows
    broken = "text,label\ncafé,1\n".encode("utf-16")[:-3]  # cut inside a character
    assert_mentions(error_message(read_table, write(tmp_path / "broken.csv", broken)),
                    "broken.csv, line 2", "not valid UTF-16, as its byte order mark says")


def test_the_held_out_split_keeps_rare_labels_in_training(tmp_path):
    """300 labels with one example each (a multi-label news corpus): none may land only in the held-out part."""
    from stellartune.training.recipe import read_data

    rows = [(text, labels) for text, labels, _ in
            (line.split("\t") for line in data_file("goemotions/train.tsv").read_text().splitlines()[:600])]
    rows = [{"text": text, "labels": labels + (f",rare-{i}" if i < 300 else "")} for i, (text, labels) in enumerate(rows)]
    said = []
    _, task, data = read_data(TrainConfig(train=rows, task="multi-label"), said.append)
    held_out = data.eval
    assert task.check_known_labels(held_out) is None  # every held-out label has an output
    assert len(data.train) + len(data.calibration) + len(held_out) == 600
    assert 0 < len(held_out) < 60  # 60 drawn; those with a rare label moved back
    assert not any(name.startswith("rare-") for labels in held_out.labels for name in labels)
    assert {name for labels in held_out.labels for name in labels} <= set(task.labels)
    assert any("too rare to hold out stay in training" in line for line in said), said
    single = [{"text": text, "label": "rare" if i == 0 else "a" if i % 2 else "b"} for i, (text, _) in enumerate(rows)]
    for seed in range(5):  # a class with one example never goes to the held-out part alone
        _, _, data = read_data(TrainConfig(train=single, seed=seed), said.append)
        assert "rare" in data.train.labels and "rare" not in data.eval.labels


def test_messages_name_a_few_and_count_the_rest(tmp_path):
    task = task_class("classification").from_examples(load_examples(
        labeled_csv(tmp_path / "train.csv", [f"intent_{i:03d}" for i in range(300)])), TrainConfig())
    message = error_message(task.check_known_labels, load_examples(labeled_csv(tmp_path / "dev.csv", ["unknown"])))
    assert_mentions(message, "'unknown' never seen in training", "intent_000", "and 294 more")
    assert len(message) < 300
