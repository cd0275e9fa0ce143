"""`stellartune export`: ONNX graphs of real MiniLM models, loaded back and run by ONNX Runtime."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import data_file, example_inputs, fit_fp32, tsv_slice

import stellartune
from stellartune.onnx_export import without_scores

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", ["classification", "pairs", "ner", "qa", "few-shot", "long-texts"])
def test_fp32_export_gives_the_pytorch_logits(short_runs, tmp_path, kind):
    check = stellartune.export(short_runs[kind], tmp_path / "onnx")
    assert check["max_abs_logit_difference"] < 1e-4 and check["prediction_agreement"] == 1.0  # the export's own check
    pytorch, exported = stellartune.load(short_runs[kind]), stellartune.load(tmp_path / "onnx")
    assert type(exported.model).__name__ == "OnnxClassifier"
    _, texts, pairs = example_inputs(kind)
    examples = pytorch.task.prepare(texts, pairs, pytorch.columns)
    expected, _ = pytorch.run(examples, precision="fp32")
    got, _ = exported.run(examples)
    assert (expected - got).abs().max() < 1e-4
    predicted = without_scores(pytorch.predict(texts, pairs, precision="fp32"))
    assert len({json.dumps(p) for p in predicted}) > 1, predicted  # the model tells its inputs apart
    assert without_scores(exported.predict(texts, pairs)) == predicted


def test_a_custom_head_exports_too(tmp_path):
    """Mean pooling and an MLP head (stellartune's own modules, not a transformers class) trace as well."""
    train = tsv_slice(data_file("sst2/train.tsv"), tmp_path / "train.tsv", 200)
    run = fit_fp32(tmp_path, "mean_mlp", train, steps=6, pooling="mean", head="mlp")
    check = stellartune.export(run, tmp_path / "onnx")
    assert check["max_abs_logit_difference"] < 1e-4 and check["prediction_agreement"] == 1.0
    assert (tmp_path / "onnx" / "export.json").exists() and not (tmp_path / "onnx" / "head.safetensors").exists()


@pytest.fixture(scope="module")
def sst2_model(tmp_path_factory):
    """One epoch on 2,000 SST-2 sentences: a model with real margins for int8 to keep (or lose)."""
    folder = tmp_path_factory.mktemp("sst2_export")
    train = tsv_slice(data_file("sst2/train.tsv"), folder / "train.tsv", 2000)
    dev = tsv_slice(data_file("sst2/dev.tsv"), folder / "dev.tsv", 200)
    # the settings the int8 figures of docs/export.md were measured with (the defaults before issue 15)
    stellartune.fit(train=str(train), eval=str(dev), output=str(folder / "run"), epochs=1, pooling="model", lr=5e-5,
                    batch_size=32, progress=False)
    return folder / "run"


def test_int8_keeps_the_labels_on_sst2_dev_and_the_accuracy_cost_is_measured(sst2_model, tmp_path):
    check = stellartune.export(sst2_model, tmp_path / "int8", quantize="int8")
    assert check["quantized"] == "int8" and check["prediction_agreement"] >= 0.95
    dev = data_file("sst2/dev.tsv")
    pytorch = stellartune.evaluate(sst2_model, str(dev), precision="fp32")
    int8 = stellartune.evaluate(tmp_path / "int8", str(dev))
    rows = [line.split("\t")[0] for line in dev.read_text().splitlines()[1:]]
    before = stellartune.load(sst2_model).predict(rows, precision="fp32")
    after = stellartune.load(tmp_path / "int8").predict(rows)
    agreement = np.mean([a["label"] == b["label"] for a, b in zip(before, after)])
    print(f"int8 on SST-2 dev (872): labels agree on {agreement:.1%}; accuracy {int8['accuracy']:.4f} against "
          f"{pytorch['accuracy']:.4f} in fp32 ({int8['accuracy'] - pytorch['accuracy']:+.4f})")
    assert pytorch["accuracy"] > 0.7  # a trained model, not a coin
    assert agreement >= 0.97
    assert abs(int8["accuracy"] - pytorch["accuracy"]) <= 0.02


def test_a_damaged_or_missing_onnx_file_is_one_line(short_runs, tmp_path):
    stellartune.export(short_runs["classification"], tmp_path / "onnx")
    graph = tmp_path / "onnx" / "model.onnx"
    for damage, expected in ((lambda: graph.write_bytes(graph.read_bytes()[:1000]), "cannot load the ONNX model"),
                             (graph.unlink, "no such file")):
        damage()
        result = subprocess.run([sys.executable, "-m", "stellartune.cli", "predict", "--model", str(tmp_path / "onnx"),
                                 "--input", "-"], input="A truly brilliant film.\n", capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"error: {graph}: {expected}"), result.stderr


def test_an_export_outside_tolerance_is_not_written(short_runs, tmp_path):
    """int8 moves logits by about 1e-2: held to the fp32 tolerance, it fails with the figure."""
    run = short_runs["classification"]
    with pytest.raises(stellartune.StellarError) as info:
        stellartune.export(run, tmp_path / "int8", quantize="int8", max_difference=1e-3)
    assert "the int8 export differs from the PyTorch model by up to" in str(info.value)
    assert float(str(info.value).split("by up to ")[1].split()[0]) > 1e-3 and "not written" in str(info.value)
    assert not (tmp_path / "int8").exists()


def test_the_export_command_checks_on_the_given_data_and_holds_to_its_flags(short_runs, tmp_path):
    run = short_runs["classification"]
    texts = [line.split("\t")[0] for line in data_file("sst2/dev.tsv").read_text().splitlines()[1:8]]
    (tmp_path / "verify.txt").write_text("\n".join(texts) + "\n")
    export = lambda output, *flags: subprocess.run(
        [sys.executable, "-m", "stellartune.cli", "export", str(run), "--output", str(tmp_path / output),
         "--verify-data", str(tmp_path / "verify.txt"), *flags], capture_output=True, text=True, timeout=600)
    result = export("onnx")
    assert result.returncode == 0 and f"wrote {tmp_path / 'onnx'}" in result.stderr, result.stderr
    check = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert check["examples"] == 7 and check["max_abs_logit_difference"] < 1e-4  # checked on the given texts
    result = export("refused", "--max-difference", "1e-12")  # --quantize and --min-agreement: test_nothing_lost.py
    last = result.stderr.splitlines()[-1]  # after the check's own figures
    assert result.returncode == 2 and last.startswith("error: the fp32 export differs from the PyTorch model by up to")
    assert last.endswith("in a logit (--max-difference 1e-12); not written") and not (tmp_path / "refused").exists()
