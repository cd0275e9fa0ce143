"""Saved models reload to the same predictions, and the default head is a standard HF checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
import torch
import transformers
from conftest import data_file, example_inputs, tsv_slice

import stellartune
from stellartune.inference.precision import resolve_precision


def cli(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stellartune.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=600)


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in open(path)]


def test_run_folder_holds_everything(small_sst2_run):
    for name in ("config.yaml", "metrics.json", "eval_predictions.jsonl", "log.jsonl", "README.md",
                 "model/model.safetensors", "model/config.json", "model/tokenizer.json", "model/stellartune.json"):
        assert (small_sst2_run / name).exists(), name
    assert not (small_sst2_run / "checkpoints").exists()
    assert not list(small_sst2_run.rglob("*.bin"))  # weights only as safetensors
    config = json.loads((small_sst2_run / "model" / "config.json").read_text())
    assert config["id2label"] == {"0": "0", "1": "1"}
    card = (small_sst2_run / "README.md").read_text()
    assert "minilm" in card and "accuracy" in card


def test_reload_gives_identical_predictions(small_sst2_run):
    saved = read_jsonl(small_sst2_run / "eval_predictions.jsonl")
    reloaded = stellartune.load(small_sst2_run).predict([r["text"] for r in saved])
    # both in the run's precision (auto); bf16 rounding depends on which examples share a batch
    tolerance = 1e-5 if resolve_precision("auto", "cpu") == "fp32" else 1e-2
    for new, old in zip(reloaded, saved):
        assert new["score"] == pytest.approx(old["score"], abs=tolerance)
        assert new["label"] == old["label"] or abs(old["score"] - 0.5) < tolerance


def test_pipeline_matches_stellartune_predict(small_sst2_run, sst2_dev, tmp_path):
    texts = tsv_slice(sst2_dev, tmp_path / "texts.tsv", 60, start=300)
    result = cli("predict", "--model", str(small_sst2_run), "--input", str(texts), "--output", str(tmp_path / "p.jsonl"),
                 "--precision", "fp32")  # as the pipeline runs
    assert result.returncode == 0, result.stderr
    ours = read_jsonl(tmp_path / "p.jsonl")
    assert len(ours) == 60
    pipe = transformers.pipeline("text-classification", model=str(small_sst2_run / "model"), device="cpu")
    theirs = pipe([r["text"] for r in ours])
    assert [t["label"] for t in theirs] == [o["label"] for o in ours]
    for t, o in zip(theirs, ours):
        assert t["score"] == pytest.approx(o["score"], abs=1e-4)


def test_predict_from_stdin(small_sst2_run):
    result = cli("predict", "--model", str(small_sst2_run), "--input", "-",
                 stdin="a gorgeous, witty, seductive movie.\nthe plot is nothing but boilerplate clichés\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    texts = ["a gorgeous, witty, seductive movie.", "the plot is nothing but boilerplate clichés"]
    assert [line["text"] for line in lines] == texts
    expected = stellartune.load(small_sst2_run).predict(texts)
    assert [line["label"] for line in lines] == [e["label"] for e in expected]
    assert [line["score"] for line in lines] == pytest.approx([e["score"] for e in expected], abs=1e-6)


@pytest.mark.parametrize("name, content, message", [
    ("empty.txt", b"", "stdin: no text to predict"),
    ("blank.txt", b"\n  \n", 'stdin, line 1, column "text": empty text'),
    ("blank_inside.txt", b"good\nbad\n  \nfine\n", 'stdin, line 3, column "text": empty text'),
    ("latin1.txt", "un film très réussi\n".encode("latin-1"), "stdin, line 1: not UTF-8 text"),
])
def test_predict_on_empty_or_undecodable_stdin_is_one_line(small_sst2_run, tmp_path, name, content, message):
    result = subprocess.run([sys.executable, "-m", "stellartune.cli", "predict", "--model", str(small_sst2_run),
                             "--input", "-"], input=content, capture_output=True, timeout=600)
    stderr = result.stderr.decode()
    assert result.returncode == 2 and stderr.startswith(f"error: {message}") and stderr.count("\n") == 1, stderr


@pytest.mark.parametrize("content, message", [
    (b"", "empty.csv: file is empty"),
    ("sentence\nun film très réussi\n".encode("latin-1"), "empty.csv, line 2: not UTF-8 text"),
])
def test_predict_on_an_empty_or_undecodable_file_is_one_line(small_sst2_run, tmp_path, content, message):
    (tmp_path / "empty.csv").write_bytes(content)
    result = cli("predict", "--model", str(small_sst2_run), "--input", str(tmp_path / "empty.csv"))
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_evaluate_command_reproduces_run_metrics(small_sst2_run, tmp_path):
    dev = small_sst2_run.parent / "dev.tsv"
    result = cli("evaluate", "--model", str(small_sst2_run), "--data", str(dev), "--output", str(tmp_path / "m.json"))
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout and "confusion" in result.stdout
    evaluated = json.loads((tmp_path / "m.json").read_text())
    trained = json.loads((small_sst2_run / "metrics.json").read_text())
    assert evaluated["accuracy"] == pytest.approx(trained["accuracy"], abs=1e-9)
    assert evaluated["confusion_matrix"] == trained["confusion_matrix"]


def test_predict_runs_in_the_runs_precision_and_agrees_with_fp32(small_sst2_run):
    model = stellartune.load(small_sst2_run)
    assert model.precision == "auto"  # saved with the run: bf16 autocast where the CPU or GPU runs it fast
    texts = [r["text"] for r in read_jsonl(small_sst2_run / "eval_predictions.jsonl")]
    default, exact = model.predict(texts), model.predict(texts, precision="fp32")
    assert sum(a["label"] == b["label"] for a, b in zip(default, exact)) >= 0.99 * len(texts)
    assert max(abs(a["score"] - b["score"]) for a, b in zip(default, exact)) < 0.02
    # which precision ran: exactly the one `auto` resolves to on this CPU, and not the other
    ran = resolve_precision("auto", "cpu")
    other = {"bf16": "fp32", "fp32": "bf16"}[ran]
    assert default == model.predict(texts, precision=ran)
    assert [p["score"] for p in default] != [p["score"] for p in model.predict(texts, precision=other)]


def test_predict_reads_a_txt_file_one_text_per_line(small_sst2_run, tmp_path):
    lines = ["A truly brilliant film.", "Dull.", "the plot is nothing but boilerplate clichés", "Loved it."]
    (tmp_path / "new.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli("predict", "--model", str(small_sst2_run), "--input", str(tmp_path / "new.txt"))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == lines  # the short first line is a text, not a header
    assert [r["label"] for r in records] == [p["label"] for p in stellartune.load(small_sst2_run).predict(lines)]


def test_evaluate_takes_the_column_flags_of_train(small_sst2_run, tmp_path):
    dev = (small_sst2_run.parent / "dev.tsv").read_text().splitlines()
    assert dev[0] == "sentence\tlabel"
    renamed = tmp_path / "renamed.tsv"
    renamed.write_text("\n".join(["review\tgold"] + dev[1:]) + "\n", encoding="utf-8")
    result = cli("evaluate", "--model", str(small_sst2_run), "--data", str(renamed), "--text-column", "review",
                 "--label-column", "gold", "--output", str(tmp_path / "m.json"))
    assert result.returncode == 0, result.stderr
    trained = json.loads((small_sst2_run / "metrics.json").read_text())
    assert json.loads((tmp_path / "m.json").read_text())["accuracy"] == pytest.approx(trained["accuracy"], abs=1e-9)


@pytest.mark.parametrize("how", ["truncated", "zeroed"])
def test_damaged_weights_give_one_line_naming_the_file(small_sst2_run, tmp_path, how):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_sst2_run, run)
    weights = run / "model" / "model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: size // 2] if how == "truncated" else b"\0" * size)
    for command in (["predict", "--input", "-"], ["evaluate", "--data", str(small_sst2_run.parent / "dev.tsv")]):
        result = cli(command[0], "--model", str(run), *command[1:], stdin="A truly brilliant film.\n")
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"error: {weights}: cannot read the weights"), result.stderr
        assert "damaged (truncated or overwritten)" in result.stderr


def test_predict_streams_its_input(small_sst2_run, sst2_dev):
    """Predictions for the first chunk of stdin come out while stdin is still open: input is read a chunk
    at a time, so memory stays flat however long it runs (it waited for the whole input before)."""
    from stellartune.inference.io import READ_ROWS

    sentences = [line.split("\t")[0] for line in sst2_dev.read_text().splitlines()[1:]]
    process = subprocess.Popen([sys.executable, "-m", "stellartune.cli", "predict", "--model", str(small_sst2_run),
                                "--input", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(180, process.kill)  # one that waits for EOF would block the reads below forever
    watchdog.start()
    try:
        for i in range(READ_ROWS):
            process.stdin.write(sentences[i % len(sentences)] + "\n")
        process.stdin.flush()
        first = [json.loads(process.stdout.readline()) for _ in range(READ_ROWS)]  # blocks if it waits for EOF
        assert process.poll() is None  # stdin is still open: it has not read to the end
        assert [p["text"] for p in first[:3]] == [s.strip() for s in sentences[:3]]
        process.stdin.write("one more film, and a fine one\n")
        process.stdin.close()
        assert json.loads(process.stdout.readline())["text"] == "one more film, and a fine one"
        assert process.wait(timeout=120) == 0
    finally:
        watchdog.cancel()
        process.kill()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet", ".txt"])
def test_reading_in_chunks_gives_the_whole_table(sst2_dev, tmp_path, suffix):
    """Chunks of a real file, concatenated, are its whole table, with each row's file position (the
    line a multi-line quoted CSV field starts on, the JSONL line, the Parquet row)."""
    import pandas as pd

    from stellartune.data.readers import read_chunks, read_table

    frame = pd.read_csv(sst2_dev, sep="\t", quoting=3).head(250)
    frame.loc[7, "sentence"] = "a quoted\nfield over two lines, with a comma"
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        path.write_text("\n".join(frame["sentence"].str.replace("\n", " ")) + "\n")
    whole = read_table(path)
    chunks = list(read_chunks(path, rows=100))
    assert [len(c.rows) for c in chunks] == [100, 100, 50]
    assert [r for c in chunks for r in c.rows] == whole.rows
    assert [p for c in chunks for p in c.positions] == whole.positions
    assert len(whole.rows) == 250 and whole.positions[-1] == {".csv": "line 252", ".jsonl": "line 250",
                                                              ".parquet": "row 250", ".txt": "line 250"}[suffix]


@pytest.mark.parametrize("kind", ["classification", "multi-label"])
def test_a_custom_head_loads_in_transformers_with_its_head_or_is_refused(short_runs, kind):
    """Mean pooling (minilm's default) is no transformers head: the folder ships the head's code, so the
    pipeline either runs that head (trust_remote_code=True) or refuses; it never adds a random head."""
    folder = short_runs[kind] / "model"
    _, texts, _ = example_inputs(kind)
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        transformers.pipeline("text-classification", model=str(folder), device="cpu")
    pipe = transformers.pipeline("text-classification", model=str(folder), trust_remote_code=True, top_k=None,
                                 device="cpu")
    ours = stellartune.load(short_runs[kind]).predict(texts, precision="fp32")
    assert len({json.dumps(p.get("label", p.get("labels"))) for p in ours}) > 1  # it tells the texts apart
    for theirs, mine in zip(pipe(texts), ours):
        assert {d["label"]: d["score"] for d in theirs} == pytest.approx(mine["scores"], abs=1e-5)


class LeavesAMark:
    """A pickle that, if it were ever loaded, would create a file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_model_folder_of_pickled_weights_is_refused_in_one_line(tmp_path):
    import shutil

    from stellartune.models import resolve_model

    folder = tmp_path / "pickled"
    shutil.copytree(resolve_model("minilm"), folder, ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save({"weights": LeavesAMark(tmp_path / "ran")}, folder / "pytorch_model.bin")
    train = tsv_slice(data_file("sst2/train.tsv"), tmp_path / "train.tsv", 40)
    result = cli("train", "--model", str(folder), "--train", str(train), "--output", str(tmp_path / "run"))
    last = result.stderr.splitlines()[-1]  # after the data's log lines: the data is read first
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert last.startswith(f"error: {folder}: its weights are a pickle (pytorch_model.bin), and stellartune loads "
                           "safetensors only")
    assert "weights_only" not in result.stderr and not (tmp_path / "ran").exists()


def test_a_model_with_a_custom_head_trains_again_from_its_encoder(short_runs, tmp_path):
    """`--model runs/x/model` fine-tunes the trained encoder again under a new head (the folder's own type
    is no encoder transformers knows: its encoder is written out once, into the cache)."""
    trained = stellartune.load(short_runs["classification"]).model.encoder
    train = tsv_slice(data_file("sst2/train.tsv"), tmp_path / "train.tsv", 40)
    again = stellartune.fit(model=str(short_runs["classification"] / "model"), train=str(train),
                            output=str(tmp_path / "run"), max_steps=1, batch_size=8, lr=1e-12, progress=False)
    name = "embeddings.word_embeddings.weight"
    start = dict(again.model.base_model.named_parameters())[name]
    assert torch.allclose(start, dict(trained.named_parameters())[name], atol=1e-6)
