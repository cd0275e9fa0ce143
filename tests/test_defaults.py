"""Strong models with no flags: the `auto` settings, decided from the model and the data, on real slices.

Each slice must reach issue 15's floor (SST-2 0.80, CoNLL 0.68) and the Hugging Face Trainer's best over
the learning-rate x batch-size grid on the same slice, model and epochs less 1 point, as
benchmarks/zero_config.py --anchors measured it; the old defaults (BERT's pooler, lr 5e-5, batch 32) gave
0.744 and 0.362."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import data_file

import stellartune
from stellartune.training.auto import auto_batch_size

pytestmark = pytest.mark.slow
ANCHORS = Path(__file__).resolve().parents[1] / "benchmarks" / "zero_config_anchors.json"


def required(slice_name: str, floor: float) -> float:
    """The floor, or the Trainer's best on the slice (chosen on dev) less 1 point when that is higher."""
    runs = [r for r in json.loads(ANCHORS.read_text())["runs"] if r["slice"] == slice_name]
    return max(floor, max(runs, key=lambda r: r["chosen_on"])["score"] - 0.01)


def settled(run) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def test_sst2_last_2000_sentences_one_epoch_with_no_other_flag(tmp_path, sst2_dev, caplog):
    lines = data_file("sst2/train.tsv").read_text().splitlines()
    (tmp_path / "train.tsv").write_text("\n".join([lines[0], *lines[-2000:]]) + "\n")
    with caplog.at_level("INFO", logger="stellartune"):
        model = stellartune.fit(train=str(tmp_path / "train.tsv"), eval=str(sst2_dev), output=str(tmp_path / "run"),
                                epochs=1, progress=False)
    assert model.metrics["accuracy"] >= required("sst2", 0.80), model.metrics
    # minilm is a sentence-transformers checkpoint: its own mean pooling, said and saved
    assert "head: mean pooling, as the checkpoint's 1_Pooling/config.json says" in caplog.text
    assert (tmp_path / "run" / "model" / "stellartune_head.py").exists()  # its head's code goes with it
    assert {k: settled(tmp_path / "run")[k] for k in ("pooling", "lr", "batch_size")} == {
        "pooling": "mean", "lr": 1e-4, "batch_size": 8}


def test_conll_first_2000_sentences_one_epoch_with_no_other_flag(tmp_path):
    text = data_file("conll2003/train.txt").read_text()
    sentences = [s.strip("\n") for s in text.split("\n\n") if s.strip() and not s.strip().startswith("-DOCSTART-")]
    (tmp_path / "train.txt").write_text("\n\n".join(sentences[:2000]) + "\n")
    model = stellartune.fit(train=str(tmp_path / "train.txt"), eval=str(data_file("conll2003/test.txt")),
                            output=str(tmp_path / "run"), epochs=1, progress=False)
    assert model.metrics["f1"] >= required("conll", 0.68), model.metrics
    assert {k: settled(tmp_path / "run")[k] for k in ("task", "lr", "batch_size")} == {
        "task": "ner", "lr": 2e-4, "batch_size": 8}


def test_given_settings_are_kept(tmp_path, sst2_dev):
    train = tmp_path / "train.tsv"
    train.write_text("\n".join(data_file("sst2/train.tsv").read_text().splitlines()[:201]) + "\n")
    stellartune.fit(train=str(train), output=str(tmp_path / "run"), max_steps=2, lr=3e-5, batch_size=32,
                    pooling="model", progress=False)
    assert {k: settled(tmp_path / "run")[k] for k in ("pooling", "lr", "batch_size")} == {
        "pooling": "model", "lr": 3e-5, "batch_size": 32}
    assert not (tmp_path / "run" / "model" / "head.json").exists()  # the architecture's own head


def test_batch_size_follows_the_data_size():
    """The measured rule (benchmarks/zero_config.py): batch 8 for the 2,000-example slices (SST-2 and CoNLL
    at 1 epoch, BANKING77 and STS-B at 3), 16 for MRPC, GoEmotions and SMS spam (3,668 to 4,459 examples x 3
    epochs), 32 for all of SST-2; a given --epochs counts."""
    sizes = [(2000, 1), (2000, 3), (3668, 3), (4459, 3), (67349, 3), (67349, 0.2)]
    assert [auto_batch_size(examples, epochs) for examples, epochs in sizes] == [8, 8, 16, 16, 32, 16]
