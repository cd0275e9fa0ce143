"""Data files read through the store (data/store.py): a chunk at a time onto disk, tokenized once, reused.

A run on a file in the store trains as a run on the same rows in memory does, loss for loss; the store is
reused by the next run on the same data and made again when the file changes by one byte; a bad row far
into a large file still stops with its line number.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import data_file, last_paragraph_documents, write_csv

import stellartune
from stellartune.config import TrainConfig
from stellartune.errors import StellarError
from stellartune.training.recipe import prepare_data


def step_losses(run: Path) -> list[float]:
    return [record["loss"] for record in map(json.loads, (run / "log.jsonl").read_text().splitlines())
            if "loss" in record]


def stsb_rows(count: int) -> list[dict]:
    with open(data_file("stsb/train.tsv"), encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[:count]
    return [{"sentence1": r["sentence1"], "sentence2": r["sentence2"], "score": r["score"]} for r in rows]


@pytest.mark.parametrize("rows", [
    pytest.param(lambda: last_paragraph_documents(48, seed=3), id="documents-read-in-windows"),
    pytest.param(lambda: stsb_rows(160), id="sentence-pairs-with-scores"),
])
def test_a_stored_file_trains_loss_for_loss_as_its_rows_in_memory(tmp_path, rows):
    rows = rows()
    settings = dict(max_steps=6, log_steps=1, eval_steps=6, batch_size=8, max_length=128, progress=False, seed=5)
    stored = stellartune.fit(train=str(write_csv(tmp_path / "train.csv", rows)), output=str(tmp_path / "stored"),
                             data_cache=str(tmp_path / "store"), **settings)
    in_memory = stellartune.fit(train=rows, output=str(tmp_path / "in-memory"), **settings)
    assert list((tmp_path / "store").glob("tokens-*.arrow")), "the file was not read through the store"
    assert len(step_losses(tmp_path / "stored")) == 6
    assert step_losses(tmp_path / "stored") == step_losses(tmp_path / "in-memory")
    assert stored.metrics == in_memory.metrics


def prepared_log(train: Path, store: Path) -> tuple[list[str], object]:
    said = []
    prepared = prepare_data(TrainConfig(train=str(train), data_cache=str(store), progress=False),
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
    entries = sorted(path.name for path in store.iterdir())
    assert len(entries) == 3

    content = train.read_bytes()
    changed = content.replace(b"review 7: a fine film", b"review 7: a fine filn")
    assert len(changed) == len(content) and changed != content
    train.write_bytes(changed)
    after, prepared = prepared_log(train, store)
    assert any("read and checked 200 rows" in line for line in after)
    assert sum(": tokenized " in line for line in after) == 2
    texts = list(prepared.data.train.texts) + list(prepared.data.eval.texts)
    assert "review 7: a fine filn" in texts and "review 7: a fine film" not in texts
    assert len(list(store.iterdir())) == 6


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
