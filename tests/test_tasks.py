"""Each classification task trained for real: the small pretrained MiniLM on slices of real data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import data_file, tsv_slice
from sklearn.metrics import f1_score

import stellartune
from stellartune.data import read_table
from stellartune.data.examples import resolve_columns
from stellartune.models import load_tokenizer, resolve_model
from stellartune.config import TrainConfig
from stellartune.tasks import task_class, task_from_labels

pytestmark = pytest.mark.slow


def test_sentence_pairs_carry_token_type_ids(tmp_path):
    """RTE pairs are encoded as [CLS] a [SEP] b [SEP] with segment ids 0 then 1, and train."""
    train = tsv_slice(data_file("rte/train.tsv"), tmp_path / "train.tsv", 200)
    table = read_table(str(train))
    columns = resolve_columns(table)
    assert (columns.text, columns.pair, columns.label) == ("sentence1", "sentence2", "label")
    single_label = task_class("classification")
    examples = single_label.build_examples(table, columns)
    task = single_label.from_examples(examples, TrainConfig())
    tokenizer = load_tokenizer(resolve_model("minilm"))
    encoded = task.encode(examples, tokenizer, max_length=128)
    first = encoded.features[0]
    sep = tokenizer.sep_token_id
    assert first["input_ids"][0] == tokenizer.cls_token_id and first["input_ids"].count(sep) == 2
    boundary = first["input_ids"].index(sep) + 1
    assert set(first["token_type_ids"][:boundary]) == {0} and set(first["token_type_ids"][boundary:]) == {1}
    assert encoded.truncated == sum(len(tokenizer(a, b)["input_ids"]) > 128 for a, b in zip(examples.texts, examples.pairs))

    model = stellartune.fit(train=str(train), eval=str(tsv_slice(data_file("rte/dev.tsv"), tmp_path / "dev.tsv", 100)),
                            output=str(tmp_path / "run"), max_steps=4, batch_size=8, progress=False)
    assert model.task.labels == ["entailment", "not_entailment"]
    predictions = model.predict(["A man is playing a guitar."], ["Someone plays music."])
    assert predictions[0]["label"] in model.task.labels


def test_stsb_regression_pearson_above_06(tmp_path):
    train = tsv_slice(data_file("stsb/train.tsv"), tmp_path / "train.tsv", 1500)
    dev = tsv_slice(data_file("stsb/dev.tsv"), tmp_path / "dev.tsv", 500)
    assert task_from_labels(read_table(str(train)), "score", ",")[0].name == "regression"
    model = stellartune.fit(train=str(train), eval=str(dev), output=str(tmp_path / "run"), epochs=1,
                            batch_size=16, lr=1e-4, progress=False)
    assert model.task.name == "regression"
    assert model.metrics["pearson"] >= 0.6, model.metrics


def goemotions_slice(path, target, rows: int, names: list[str]):
    """GoEmotions rows (text, comma-separated label ids) as JSONL with label names in a list."""
    lines = path.read_text(encoding="utf-8").splitlines()[:rows]
    with open(target, "w") as handle:
        for line in lines:
            text, ids, _ = line.split("\t")
            handle.write(json.dumps({"text": text, "labels": [names[int(i)] for i in ids.split(",")]}) + "\n")
    return target


def best_constant_micro_f1(gold: np.ndarray) -> float:
    """The best micro-F1 of predicting one fixed label set for every example (the k most frequent labels)."""
    order = np.argsort(-gold.sum(0))
    scores = []
    for k in range(1, gold.shape[1] + 1):
        constant = np.zeros_like(gold)
        constant[:, order[:k]] = 1
        scores.append(f1_score(gold, constant, average="micro", zero_division=0))
    return max(scores)


def test_goemotions_multi_label_beats_best_constant(tmp_path):
    names = data_file("goemotions/emotions.txt").read_text().split()
    train = goemotions_slice(data_file("goemotions/train.tsv"), tmp_path / "train.jsonl", 4000, names)
    dev = goemotions_slice(data_file("goemotions/dev.tsv"), tmp_path / "dev.jsonl", 1000, names)
    model = stellartune.fit(train=str(train), eval=str(dev), output=str(tmp_path / "run"), epochs=1,
                            batch_size=16, lr=2e-4, progress=False)
    assert model.task.name == "multi-label"
    gold = model.task.targets([r["labels"] for r in map(json.loads, dev.read_text().splitlines())]).numpy()
    baseline = best_constant_micro_f1(gold)
    assert model.metrics["micro_f1"] > baseline + 0.05, (model.metrics["micro_f1"], baseline)
    assert 0.05 <= model.metrics["threshold"] <= 0.95
