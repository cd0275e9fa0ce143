"""Texts longer than --max-length are read whole (`--long-texts`, windows by default): issue 32."""

from __future__ import annotations

import json
import subprocess
import sys

import stellartune
from conftest import example_inputs, fit_fp32


def test_a_label_said_only_in_the_last_paragraph_is_read_in_windows_and_missed_when_cut(short_runs,
                                                                                          last_paragraph_set, tmp_path):
    """The documents are about 220 tokens, and only their last sentence tells the label: read in windows of
    128 tokens (--long-texts auto) it counts, cut at 128 (stellartune's reading before windows) it is lost."""
    train, test = last_paragraph_set
    whole = stellartune.load(short_runs["long-texts"]).evaluate(str(test))
    # 10 steps: however long it trained, a text cut before its last sentence holds nothing to learn from
    cut = stellartune.load(fit_fp32(tmp_path, "cut", train, steps=10, max_length=128,
                                    long_texts="truncate")).evaluate(str(test))
    assert whole["accuracy"] >= 0.95, whole
    assert cut["accuracy"] <= 0.7, cut


def test_predict_says_how_many_windows_each_text_took(short_runs, tmp_path):
    _, texts, _ = example_inputs("long-texts")
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    subprocess.run([sys.executable, "-m", "stellartune.cli", "predict", "--model", str(short_runs["long-texts"]),
                    "--input", str(tmp_path / "texts.txt"), "--output", str(tmp_path / "out.jsonl")], check=True)
    windows = [json.loads(line)["windows"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert windows[-1] == 1 and all(count > 1 for count in windows[:-1]), windows


def test_with_no_flag_the_length_holds_most_texts_whole_and_longer_ones_go_in_windows(last_paragraph_set):
    """--max-length auto: the length (in steps of 64) that holds nine in ten training texts, from 128 up to the
    model's 512; --long-texts auto: windows. Decided from the training texts and the tokenizer alone."""
    from stellartune.config import TrainConfig
    from stellartune.models.loading import load_tokenizer
    from stellartune.models.registry import resolve_model
    from stellartune.tasks import task_class

    task_type, said = task_class("classification"), []
    tokenizer = load_tokenizer(resolve_model("minilm"))
    train = task_type.labeled_examples(str(last_paragraph_set[0]), task_type.find_columns(task_type.read(str(last_paragraph_set[0]))))
    lengths = sorted(len(ids) for ids in tokenizer(train.texts)["input_ids"])
    config = TrainConfig(train=str(last_paragraph_set[0])).with_task("classification", task_type.default_max_length)
    task = task_type.from_examples(train, config)
    settled = task.settle(train, tokenizer, config, said.append)
    assert settled.max_length == -(-lengths[int(0.9 * len(lengths))] // 64) * 64 == 256, (lengths[-1], said)
    assert task.reading == "windows" and "--max-length 256 (auto)" in said[0]
    long_ones = train.subset(range(4))
    long_ones.texts[:] = [" ".join([text] * 4) for text in long_ones.texts]  # about 900 tokens each
    config = TrainConfig(train="x.csv").with_task("classification", None)
    assert task.settle(long_ones, tokenizer, config, said.append).max_length == 512
