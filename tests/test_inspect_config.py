"""Config (YAML + flags, saved with the run), seeded determinism, CLI help, and `inspect`."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import data_file, tsv_slice

import stellartune
from stellartune.cli import build_parser
from stellartune.config import TrainConfig
from stellartune.errors import StellarError
from stellartune.inspect import inspect_model


def test_yaml_then_flags_override_and_saved_config(tmp_path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump({"lr": 3e-5, "batch-size": 8, "epochs": 2}))
    config = TrainConfig.from_sources(str(config_file), batch_size=4)
    assert (config.lr, config.batch_size, config.epochs) == (3e-5, 4, 2.0)
    with pytest.raises(StellarError, match="unknown setting.*learning_rate"):
        TrainConfig.from_sources(None, learning_rate=1.0)
    with pytest.raises(StellarError, match="--pooling must be one of"):
        TrainConfig(pooling="max")


def test_help_documents_every_setting_with_its_default():
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for name, field in TrainConfig.__dataclass_fields__.items():
        assert "--" + name.replace("_", "-") in text, name
    assert "(default: 0.1)" in text and "(default: minilm)" in text


def test_same_seed_same_metrics_and_saved_config(tmp_path):
    train = tsv_slice(data_file("sst2/train.tsv"), tmp_path / "train.tsv", 160)
    dev = tsv_slice(data_file("sst2/dev.tsv"), tmp_path / "dev.tsv", 80)
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump({"max_steps": 6, "batch_size": 8, "lr": 1e-4, "progress": False}))
    runs = [stellartune.fit(str(config_file), train=str(train), eval=str(dev), output=str(tmp_path / f"r{i}"),
                            seed=seed) for i, seed in enumerate((3, 3, 4))]
    texts = [line.split("\t")[0] for line in dev.read_text().splitlines()[1:21]]
    scores = [[p["score"] for p in run.predict(texts)] for run in runs]
    assert scores[0] == scores[1]
    assert scores[0] != scores[2]
    saved = yaml.safe_load((tmp_path / "r0" / "config.yaml").read_text())
    assert (saved["max_steps"], saved["batch_size"], saved["seed"], saved["train"]) == (6, 8, 3, str(train))
    assert TrainConfig(**saved) == TrainConfig.from_sources(str(tmp_path / "r0" / "config.yaml"))


def test_inspect_parameters_tokens_and_similarity():
    report = inspect_model("minilm", text="A truly brilliant film.",
                           compare=["A truly brilliant film.", "An excellent movie."])
    assert "total parameters: 22,713,216" in report
    assert "word_embeddings" in report and "30522x384" in report
    assert "[CLS]" in report and "brilliant" in report
    similar = float(report.split("cosine similarity of mean-pooled embeddings: ")[1].split()[0])
    unrelated = inspect_model("minilm", compare=["A truly brilliant film.", "Interest rates rose by half a point."])
    assert similar > float(unrelated.split("embeddings: ")[1].split()[0]) + 0.2


def test_inspect_command_runs():
    result = subprocess.run([sys.executable, "-m", "stellartune.cli", "inspect", "--model", "minilm", "--depth", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "embeddings" in result.stdout and "trainable" in result.stdout


def test_inspect_shows_the_parameter_groups_of_a_strategy():
    result = subprocess.run([sys.executable, "-m", "stellartune.cli", "inspect", "--model", "minilm", "--depth", "1",
                             "--freeze", "layers:2", "--lr", "1e-4", "--layer-lr-decay", "0.5", "--head-lr", "1e-3"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.split("parameter groups")[1].splitlines()[3:]
            if line.strip() and "(no" not in line}
    assert rows["head"][3] == "0.001" and rows["layer.5"][3] == "0.0001" and rows["layer.2"][3] == "1.25e-05"
    assert rows["layer.1"][-1] == rows["layer.0"][-1] == rows["embeddings"][-1] == "frozen"
