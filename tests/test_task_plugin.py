"""Adding a task is one file and one registry line (issue 30): a task written outside stellartune
(`plugin/ordinal_rating.py`, ratings on an ordered scale) becomes `--task ordinal-rating` through the
`stellartune.tasks` entry point an installed package declares, and trains, predicts, serves and exports
like a built-in one, in this process and in the CLI's."""

from __future__ import annotations

import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import data_file, write_csv
from test_serve import request, server

import stellartune
from stellartune import task_registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The task's file and its registry line as an installed package has them: the module, and a dist-info
    whose entry_points.txt names it, in a folder on the path of this process and of the CLI's."""
    folder = tmp_path_factory.mktemp("plugin")
    shutil.copy(Path(__file__).parent / "plugin" / "ordinal_rating.py", folder)
    info = folder / "toy_ordinal-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-ordinal\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[stellartune.tasks]\nordinal-rating = ordinal_rating:OrdinalRatingTask\n")
    before = os.environ.get("PYTHONPATH")
    sys.path.insert(0, str(folder))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(folder), *([before] if before else [])])
    task_registry.installed.cache_clear()
    yield folder
    sys.path.remove(str(folder))
    os.environ.pop("PYTHONPATH") if before is None else os.environ.update(PYTHONPATH=before)
    task_registry.installed.cache_clear()


def ratings(path: Path, rows: int, start: int = 0) -> Path:
    """STS-B sentence pairs with their similarity rounded to a rating of 0 to 5."""
    lines = [line.split("\t") for line in data_file("stsb/train.tsv").read_text().splitlines()[1 + start:1 + start + rows]]
    return write_csv(path, [{"sentence1": r[7], "sentence2": r[8], "label": str(round(float(r[9])))} for r in lines])


@pytest.fixture(scope="module")
def ordinal_run(plugin, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ordinal")
    stellartune.fit(train=str(ratings(folder / "train.csv", 400)), eval=str(ratings(folder / "dev.csv", 100, 400)),
                    task="ordinal-rating", output=str(folder / "run"), max_steps=30, batch_size=16, lr=4e-4,
                    precision="fp32", max_length=64, progress=False)
    return folder / "run"


def test_a_task_from_outside_is_listed_trained_and_scored_with_its_own_metrics(plugin, ordinal_run):
    assert "ordinal-rating" in task_registry.task_names()
    metrics = json.loads((ordinal_run / "metrics.json").read_text())
    rating = lambda name: [int(row["label"]) for row in csv.DictReader(open(ordinal_run.parent / name))]
    median = statistics.median_low(rating("train.csv"))
    constant = statistics.mean(abs(gold - median) for gold in rating("dev.csv"))  # 1.74
    assert {"mae", "accuracy"} <= set(metrics) and metrics["mae"] < constant / 2  # 0.62 when written
    saved = json.loads((ordinal_run / "model" / "stellartune.json").read_text())["task"]
    assert saved == {"task": "ordinal-rating", "scale": ["0", "1", "2", "3", "4", "5"], "reading": "truncate"}  # pairs: cut


def test_it_predicts_serves_and_exports_the_same_ratings(plugin, ordinal_run, tmp_path):
    rows = [line.split("\t") for line in data_file("stsb/dev.tsv").read_text().splitlines()[1:21]]
    texts, pairs = [r[7] for r in rows], [r[8] for r in rows]
    expected = [p["rating"] for p in stellartune.load(ordinal_run).predict(texts, pairs)]
    assert len(set(expected)) > 1  # a constant rating would make the comparisons below prove nothing
    write_csv(tmp_path / "input.csv", [{"sentence1": t, "sentence2": p} for t, p in zip(texts, pairs)])
    result = subprocess.run([sys.executable, "-m", "stellartune.cli", "predict", "--model", str(ordinal_run),
                             "--input", str(tmp_path / "input.csv"), "--output", str(tmp_path / "out.jsonl")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["rating"] for line in (tmp_path / "out.jsonl").read_text().splitlines()] == expected
    with server(ordinal_run, tmp_path / "serve.log") as (port, _):
        status, _, body = request(port, "POST", "/predict", {"texts": texts, "text_pairs": pairs})
    assert status == 200 and [p["rating"] for p in body["predictions"]] == expected
    stellartune.export(ordinal_run, tmp_path / "onnx")
    assert [p["rating"] for p in stellartune.load(tmp_path / "onnx").predict(texts, pairs)] == expected


def test_a_script_registers_a_task_by_its_class(plugin):
    from ordinal_rating import OrdinalRatingTask

    class StarRating(OrdinalRatingTask):
        name = "stars"

    assert stellartune.register(StarRating) is StarRating
    try:
        assert task_registry.task_class("stars") is StarRating and "stars" in task_registry.task_names()
    finally:
        task_registry.REGISTERED.pop("stars")


def test_a_task_that_leaves_out_part_of_the_contract_cannot_be_made():
    from stellartune.tasks.sequence import SequenceTask

    class NoLoss(SequenceTask):  # every abstract method but `loss`
        name, primary_metric, prediction_fields = "no-loss", "accuracy", {}

        def __init__(self):
            self.labels = ["a", "b"]

        from_examples = classmethod(lambda cls, train, config: cls())
        from_dict = classmethod(lambda cls, data: cls())
        to_dict = targets = metrics = predictions = lambda self, *args: None

    with pytest.raises(TypeError, match="abstract method.*loss"):
        NoLoss()
