"""Data files read through the store (data/store.py): a chunk at a time onto disk, tokenized once, reused.

A run on a file in the store trains as a run on the same rows in memory does, loss for loss; the store is
reused by the next run on the same data and made again when the file changes by one byte; a bad row far
into a large file still stops with its line number.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import conll_slice, data_file, last_paragraph_documents, tsv_slice, write_csv

import stellartune
from stellartune.config import TrainConfig
from stellartune.data import columnar
from stellartune.data.conll import read_conll
from stellartune.errors import StellarError
from stellartune.tasks import base as task_base
from stellartune.tasks import question_answering, token_classification
from stellartune.training.recipe import prepare_data


def step_losses(run: Path) -> list[float]:
    return [record["loss"] for record in map(json.loads, (run / "log.jsonl").read_text().splitlines())
            if "loss" in record]


def stsb_rows(count: int) -> list[dict]:
    with open(data_file("stsb/train.tsv"), encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[:count]
    return [{"sentence1": r["sentence1"], "sentence2": r["sentence2"], "score": r["score"]} for r in rows]


def sst2_rows(count: int) -> list[dict]:
    with open(data_file("sst2/train.tsv"), encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[:count]


@pytest.mark.parametrize("rows, task", [
    pytest.param(lambda: last_paragraph_documents(48, seed=3), {}, id="documents-read-in-windows"),
    pytest.param(lambda: stsb_rows(160), {}, id="sentence-pairs-with-scores"),
    pytest.param(lambda: sst2_rows(160), dict(task="cloze", template="{text} It was [MASK].",
                                              verbalizer="0=terrible,1=great"), id="cloze-prompts"),
])
def test_a_stored_file_trains_loss_for_loss_as_its_rows_in_memory(tmp_path, rows, task):
    rows = rows()
    settings = dict(max_steps=6, log_steps=1, eval_steps=6, batch_size=8, max_length=128, progress=False, seed=5,
                    **task)
    stored = stellartune.fit(train=str(write_csv(tmp_path / "train.csv", rows)), output=str(tmp_path / "stored"),
                             data_cache=str(tmp_path / "store"), **settings)
    in_memory = stellartune.fit(train=rows, output=str(tmp_path / "in-memory"), **settings)
    assert list((tmp_path / "store").glob("tokens-*.arrow")), "the file was not read through the store"
    assert len(step_losses(tmp_path / "stored")) == 6
    assert step_losses(tmp_path / "stored") == step_losses(tmp_path / "in-memory")
    assert stored.metrics == in_memory.metrics


def test_a_stored_conll_file_trains_loss_for_loss_as_in_memory_and_is_reused(tmp_path, monkeypatch):
    """NER through the store: sentences read 70 at a time, windows stored 50 sentences at a time, long
    sentences split into windows (--max-length 24), their targets stored with the token ids."""
    monkeypatch.setattr(task_base, "CHUNK_ROWS", 70)
    monkeypatch.setattr(token_classification, "TAG_CHUNK", 50)
    train = conll_slice(data_file("conll2003/train.txt"), tmp_path / "train.txt", 400)
    prepared = windows_train_as_in_memory_and_are_reused(tmp_path, train, task="ner", max_length=24)
    sentences = list(prepared.data.train.words) + list(prepared.data.eval.words)
    assert sorted(sentences) == sorted(row["tokens"] for row in read_conll(train).rows)


def test_stored_questions_train_loss_for_loss_as_in_memory_and_are_reused(tmp_path, monkeypatch):
    """Extractive QA through the store: JSONL rows read 40 at a time, windows of long contexts (--max-length
    96) stored 25 questions at a time with where their contexts' tokens are and their answers' spans."""
    monkeypatch.setattr(task_base, "CHUNK_ROWS", 40)
    monkeypatch.setattr(question_answering, "QA_CHUNK", 25)
    squad = json.loads(data_file("squad_v1.1/dev-v1.1.json").read_text())
    rows = [{"question": qa["question"], "context": paragraph["context"], "answers": qa["answers"]}
            for article in squad["data"][10:12] for paragraph in article["paragraphs"] for qa in paragraph["qas"]][:300]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    prepared = windows_train_as_in_memory_and_are_reused(tmp_path, train, task="qa", max_length=96, doc_stride=32)
    answers = list(prepared.data.train.labels) + list(prepared.data.eval.labels)
    assert sorted(map(json.dumps, answers)) == sorted(
        json.dumps([{"text": a["text"], "start": a["answer_start"]} for a in row["answers"]]) for row in rows)


def windows_train_as_in_memory_and_are_reused(tmp_path: Path, train: Path, **task) -> object:
    """Six steps on `train` through a store and in memory give the same losses, metrics and predictions, with
    examples split into windows; preparing the data again reuses the store and writes nothing. The data
    prepared again."""
    store = tmp_path / "store"
    settings = dict(max_steps=6, log_steps=1, eval_steps=6, batch_size=8, progress=False, seed=5, **task)
    stored = stellartune.fit(train=str(train), output=str(tmp_path / "stored"), data_cache=str(store), **settings)
    in_memory = stellartune.fit(train=str(train), output=str(tmp_path / "in-memory"), data_cache="off", **settings)
    assert len(step_losses(tmp_path / "stored")) == 6
    assert step_losses(tmp_path / "stored") == step_losses(tmp_path / "in-memory")
    assert stored.metrics == in_memory.metrics
    predictions = [(tmp_path / run / "eval_predictions.jsonl").read_text() for run in ("stored", "in-memory")]
    assert predictions[0] == predictions[1]
    entries = {path.name: path.stat().st_mtime_ns for path in store.iterdir()}
    said, prepared = prepared_log(train, store, seed=5, **task)
    assert any("reused the rows read and checked before" in line for line in said)
    assert sum("reused the token ids" in line for line in said) == 2
    assert any("were split into windows" in line for line in said)
    assert entries == {path.name: path.stat().st_mtime_ns for path in store.iterdir()}  # read back, not made again
    return prepared


def prepared_log(train: Path | str, store: Path, **settings) -> tuple[list[str], object]:
    said = []
    prepared = prepare_data(TrainConfig(train=str(train), data_cache=str(store), progress=False, **settings),
                            said.append)
    return said, prepared


def test_the_store_is_reused_and_made_again_when_the_file_changes_by_one_byte(tmp_path):
    rows = [{"text": f"review {i}: " + ("a fine film" if i % 2 else "a dull film"), "label": ["bad", "good"][i % 2]}
            for i in range(200)]
    train, store = write_csv(tmp_path / "train.csv", rows), tmp_path / "store"
    first, _ = prepared_log(train, store)
    assert any("read and checked 200 rows" in line for line in first)
    assert sum(": tokenized " in line for line in first) == 2  # the training and the held-out rows
    again, prepared = prepared_log(train, store)
    assert any("reused the rows read and checked before" in line for line in again)
    assert sum("reused the token ids" in line for line in again) == 2
    assert not any(": tokenized " in line for line in again)
    entries = {path.name: path.stat().st_mtime_ns for path in store.iterdir()}
    # the rows, the two sets' token ids, the held-out split and the overlap counts, each read back, not made again
    assert sorted(name.split("-")[0] for name in entries) == ["examples", "overlap", "split", "tokens", "tokens"]
    assert entries == {path.name: path.stat().st_mtime_ns for path in store.iterdir()}

    content = train.read_bytes()
    changed = content.replace(b"review 7: a fine film", b"review 7: a fine filn")
    assert len(changed) == len(content) and changed != content
    train.write_bytes(changed)
    after, prepared = prepared_log(train, store)
    assert any("read and checked 200 rows" in line for line in after)
    assert sum(": tokenized " in line for line in after) == 2
    texts = list(prepared.data.train.texts) + list(prepared.data.eval.texts)
    assert "review 7: a fine filn" in texts and "review 7: a fine film" not in texts
    assert len(list(store.iterdir())) == 10


def test_a_saved_dataset_is_read_through_the_store_and_made_again_when_it_changes(tmp_path):
    import datasets

    rows, folder, store = stsb_rows(160), tmp_path / "saved", tmp_path / "store"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(str(folder))
    settings = dict(max_steps=4, log_steps=1, eval_steps=4, batch_size=8, progress=False, seed=5)
    stored = stellartune.fit(train=f"{folder}:train", output=str(tmp_path / "stored"), data_cache=str(store),
                             **settings)
    in_memory = stellartune.fit(train=rows, output=str(tmp_path / "in-memory"), **settings)
    assert len(step_losses(tmp_path / "stored")) == 4
    assert step_losses(tmp_path / "stored") == step_losses(tmp_path / "in-memory")
    assert stored.metrics == in_memory.metrics
    said, _ = prepared_log(f"{folder}:train", store)
    assert any("reused the rows read and checked before" in line for line in said)

    rows[7]["sentence1"] += " (changed)"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(str(folder))
    said, prepared = prepared_log(f"{folder}:train", store)
    assert any("read and checked 160 rows" in line for line in said)
    assert rows[7]["sentence1"] in list(prepared.data.train.texts) + list(prepared.data.eval.texts)


def test_evaluate_reads_a_file_through_the_store_and_reuses_it(tmp_path, few_shot_runs):
    dev, store = tsv_slice(data_file("sst2/dev.tsv"), tmp_path / "dev.tsv", 300), tmp_path / "store"
    model = stellartune.load(next(iter(few_shot_runs.values())))  # answers both classes: a comparison that counts
    in_memory = model.evaluate(str(dev), data_cache="off")
    assert not store.exists()
    stored = stellartune.evaluate(model, str(dev), data_cache=str(store))
    entries = {path.name: path.stat().st_mtime_ns for path in store.iterdir()}
    assert sorted(name.split("-")[0] for name in entries) == ["examples", "tokens"]
    assert stored == in_memory
    assert all(sum(column) for column in zip(*stored["confusion_matrix"]))  # both classes predicted
    assert model.evaluate(str(dev), data_cache=str(store)) == in_memory
    assert entries == {path.name: path.stat().st_mtime_ns for path in store.iterdir()}  # read back, not made again


def test_a_bad_row_deep_in_a_large_file_is_named_by_its_line(tmp_path):
    path, bad_line = tmp_path / "large.csv", 230_001  # the header is line 1: data row 230,000, in the third chunk
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for row in range(1, 250_001):
            writer.writerow(["" if row + 1 == bad_line else f"sentence number {row}", row % 2])
    with pytest.raises(StellarError) as info:
        prepare_data(TrainConfig(train=str(path), data_cache=str(tmp_path / "store"), progress=False), print)
    assert str(info.value) == f'{path}, line {bad_line}, column "text": empty text'
    assert not any((tmp_path / "store").iterdir()), "a file that failed its checks left an entry in the store"


def test_a_bad_line_deep_in_a_conll_file_is_named_and_leaves_nothing_stored(tmp_path, monkeypatch):
    monkeypatch.setattr(task_base, "CHUNK_ROWS", 100)  # the bad line is in the tenth table of sentences read
    sentences = [f"Word{i} B-PER\nsaid O\n" for i in range(1000)]
    sentences[950] = "Word950 B-PER\nsaid\n"  # no tag: sentence 951 starts on line 950 * 3 + 1
    path = tmp_path / "large.conll"
    path.write_text("\n".join(sentences), encoding="utf-8")
    with pytest.raises(StellarError) as info:
        prepare_data(TrainConfig(train=str(path), data_cache=str(tmp_path / "store"), progress=False), print)
    assert str(info.value) == (f"{path}, line 2852: expected a token and its tag separated by whitespace, "
                               "got 'said'")
    assert not any((tmp_path / "store").iterdir()), "a file that failed its checks left an entry in the store"


def resident_kb(path: Path) -> int:
    """The kilobytes of `path`'s mapping resident in this process (Linux's /proc/self/smaps)."""
    lines = Path("/proc/self/smaps").read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.endswith(str(path))]
    return sum(int(line.split()[1]) for i in starts for line in lines[i + 1:i + 8] if line.startswith("Rss:"))


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads resident memory from Linux's /proc")
def test_reading_every_stored_row_keeps_resident_memory_flat(tmp_path, monkeypatch):
    with open(data_file("sst2/train.tsv"), encoding="utf-8") as handle:
        sentences = [line.split("\t")[0] for line in handle.read().splitlines()[1:]] * 6  # about 23 MB
    path = tmp_path / "texts.arrow"
    table = pa.table({"text": sentences})
    with pa.ipc.new_file(str(path), table.schema) as writer:
        writer.write_table(table, max_chunksize=100_000)
    monkeypatch.setattr(columnar, "RESIDENT_BUDGET", 4 << 20)
    texts = columnar.Column(columnar.MappedFile(path), "text")
    assert sum(map(len, texts)) == sum(map(len, sentences))  # every row read, in order
    read_in_order = resident_kb(path)
    picked = texts.take(np.random.default_rng(0).permutation(len(sentences))[:3000])
    assert [picked[i] for i in range(len(picked))] == [sentences[i] for i in picked.rows]  # as training reads rows
    assert path.stat().st_size > 20 << 20
    assert read_in_order < 8 << 10 and resident_kb(path) < 8 << 10  # at most the budget and the pages of a read
