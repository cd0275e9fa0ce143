"""Nothing a user owns is lost, and nothing wrong is reported as right (issue 29): outputs never replace a folder
stellartune did not write, a finished run is replaced only when asked, concurrent writers each leave whole
files, every input line gets its prediction or a one-line refusal, evaluation rows seen in training are
counted, and a decision threshold is never tuned on the data it is scored on. Each fault is made for real:
real folders, real processes, real models."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import data_file, tsv_slice

import stellartune
from stellartune.errors import StellarError

pytestmark = pytest.mark.slow


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stellartune.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=900)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    return result.stderr


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def notes_folder(parent: Path) -> Path:
    """A folder of the user's own: notes and a sub-folder."""
    (parent / "notes" / "drafts").mkdir(parents=True)
    (parent / "notes" / "ideas.txt").write_text("keep me\n")
    (parent / "notes" / "drafts" / "one.md").write_text("# draft\n")
    return parent / "notes"


def test_export_never_replaces_a_folder_it_did_not_write(short_runs, tmp_path):
    run = short_runs["classification"]
    notes = notes_folder(tmp_path)
    before = contents(notes)
    refused = one_line_error(cli("export", str(run), "--output", str(notes)))
    assert "holds files stellartune did not write (drafts, ideas.txt)" in refused and "--overwrite" in refused
    assert contents(notes) == before
    # --overwrite writes the export beside the user's files, which stay as they were
    assert cli("export", str(run), "--output", str(notes), "--overwrite").returncode == 0
    after = contents(notes)
    assert {name: after[name] for name in before} == before and "model.onnx" in after
    assert stellartune.load(notes).predict(["A truly brilliant film."])[0]["label"] in ("0", "1")
    # an earlier export (stellartune's own folder) is replaced whole, without a flag
    stellartune.export(run, tmp_path / "onnx")
    (tmp_path / "onnx" / "stale.txt").write_text("left by an old export")
    stellartune.export(run, tmp_path / "onnx")
    assert not (tmp_path / "onnx" / "stale.txt").exists() and (tmp_path / "onnx" / "model.onnx").exists()


@pytest.mark.parametrize("output, says", [
    ("RUN", "holds the model it exports"),
    ("RUN/model", "is the model it exports"),
    ("RUN/model/onnx", "is inside the model it exports"),
    ("PARENT", "holds the model it exports"),
])
def test_export_into_its_own_input_is_refused_and_deletes_nothing(short_runs, tmp_path, output, says):
    copy = tmp_path / "runs" / "sst2"
    shutil.copytree(short_runs["classification"], copy)
    before = contents(tmp_path)
    place = output.replace("RUN", str(copy)).replace("PARENT", str(tmp_path / "runs"))
    with pytest.raises(StellarError, match=says):
        stellartune.export(copy, place)
    assert contents(tmp_path) == before


def test_export_into_the_current_folder_is_one_line(short_runs, tmp_path):
    shutil.copytree(short_runs["classification"], tmp_path / "sst2")
    before = contents(tmp_path)
    result = subprocess.run([sys.executable, "-m", "stellartune.cli", "export", "sst2", "--output", "."],
                            capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert "error: --output . holds the model it exports" in one_line_error(result)
    assert contents(tmp_path) == before


def test_save_refuses_a_folder_of_other_files_and_replaces_its_own(short_runs, tmp_path):
    model = stellartune.load(short_runs["classification"])
    notes = notes_folder(tmp_path)
    before = contents(notes)
    with pytest.raises(StellarError, match="holds files stellartune did not write"):
        model.save(notes)
    assert contents(notes) == before
    model.save(notes, overwrite=True)
    assert {name: contents(notes)[name] for name in before} == before
    model.save(tmp_path / "saved")
    (tmp_path / "saved" / "stale.txt").write_text("from an earlier save")
    model.save(tmp_path / "saved")
    assert not (tmp_path / "saved" / "stale.txt").exists() and (tmp_path / "saved" / "model.safetensors").exists()


@pytest.fixture(scope="module")
def overlapping_run(tmp_path_factory) -> Path:
    """A finished run whose 40 evaluation rows hold 30 training rows (10 with other spacing), and 10 rows
    twice."""
    folder = tmp_path_factory.mktemp("overlap")
    rows = data_file("sst2/train.tsv").read_text().splitlines()
    (folder / "train.tsv").write_text("\n".join(rows[:201]) + "\n")
    evaluation = rows[1:21] + [row.replace(" ", "  ") for row in rows[21:31]] + rows[301:306] * 2
    (folder / "dev.tsv").write_text("\n".join([rows[0], *evaluation]) + "\n")
    result = cli("train", "--train", str(folder / "train.tsv"), "--eval", str(folder / "dev.tsv"), "--output",
                 str(folder / "run"), "--max-steps", "2", "--batch-size", "16", "--no-progress")
    assert result.returncode == 0, result.stderr
    (folder / "log.txt").write_text(result.stderr)
    return folder


def test_evaluation_rows_seen_in_training_or_repeated_are_counted_and_warned_about(overlapping_run):
    log = (overlapping_run / "log.txt").read_text()
    assert ("warning: 30 of 40 (75%) evaluation rows also occur in the training data (same text, whitespace "
            "aside); 5 of 40 (12%) repeat another evaluation row; the evaluation scores overstate what the model "
            "does on new data") in log


def test_a_finished_run_is_replaced_only_with_overwrite(overlapping_run):
    run, train = overlapping_run / "run", overlapping_run / "train.tsv"
    before = contents(run)
    again = ("train", "--train", str(train), "--output", str(run), "--max-steps", "1", "--no-progress")
    assert "holds a finished run; add --overwrite" in one_line_error(cli(*again))
    resumed = one_line_error(cli(*again, "--resume"))
    assert "holds a finished run (nothing to resume: it left no checkpoints); add --overwrite" in resumed
    assert contents(run) == before
    result = cli(*again, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "metrics.json").read_text())["steps"] == 1  # trained again, replaced


def test_train_into_a_folder_of_other_files_is_refused_before_writing(tmp_path):
    notes = notes_folder(tmp_path)
    before = contents(notes)
    train = tsv_slice(data_file("sst2/train.tsv"), tmp_path / "train.tsv", 40)
    refused = one_line_error(cli("train", "--train", str(train), "--output", str(notes), "--max-steps", "1"))
    assert "holds files stellartune did not write" in refused
    assert contents(notes) == before


def test_two_predicts_into_one_file_each_write_a_whole_file(short_runs, tmp_path):
    sentences = [line.split("\t")[0].strip() for line in data_file("sst2/train.tsv").read_text().splitlines()[1:2001]]
    (tmp_path / "a.txt").write_text("\n".join(sentences[:800]) + "\n")
    (tmp_path / "b.txt").write_text("\n".join(sentences[800:2000]) + "\n")
    out = tmp_path / "predictions.jsonl"
    command = lambda source: [sys.executable, "-m", "stellartune.cli", "predict", "--model",
                              str(short_runs["classification"]), "--input", str(source), "--output", str(out)]
    processes = [subprocess.Popen(command(tmp_path / name), stderr=subprocess.PIPE, text=True)
                 for name in ("a.txt", "b.txt")]
    results = [(p.wait(timeout=900), p.stderr.read()) for p in processes]
    assert [code for code, _ in results] == [0, 0], results
    assert "wrote 800 predictions" in results[0][1] and "wrote 1200 predictions" in results[1][1]
    texts = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    assert texts in (sentences[:800], sentences[800:2000])  # one whole file, not a mix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt", "predictions.jsonl"]  # no stray temp


def test_a_blank_line_in_a_text_file_is_refused_with_its_line_number(short_runs, tmp_path):
    (tmp_path / "new.txt").write_text("A truly brilliant film.\nDull.\n   \nLoved it.\n")
    error = one_line_error(cli("predict", "--model", str(short_runs["classification"]), "--input",
                               str(tmp_path / "new.txt"), "--output", str(tmp_path / "out.jsonl")))
    assert f'{tmp_path / "new.txt"}, line 3, column "text": empty text' in error
    assert not (tmp_path / "out.jsonl").exists()


def test_a_lone_surrogate_in_predict_input_is_one_line(short_runs, tmp_path):
    (tmp_path / "new.jsonl").write_text('{"sentence": "fine"}\n{"sentence": "\\ud800 x"}\n')
    error = one_line_error(cli("predict", "--model", str(short_runs["classification"]), "--input",
                               str(tmp_path / "new.jsonl")))
    assert 'new.jsonl, line 2, column "sentence": not valid Unicode text: a lone surrogate U+D800' in error


def goemotions_records(split: str, start: int, count: int) -> list[dict]:
    names = data_file("goemotions/emotions.txt").read_text().split()
    lines = data_file(f"goemotions/{split}.tsv").read_text(encoding="utf-8").splitlines()[start:start + count]
    return [{"text": text, "labels": [names[int(i)] for i in ids.split(",")]}
            for text, ids, _ in (line.split("\t") for line in lines)]


def test_the_multi_label_threshold_is_chosen_on_calibration_data_never_on_the_scored_data(tmp_path, caplog):
    """A calibration set whose every row has every label makes the lowest threshold the best there; on the
    evaluation data (real GoEmotions comments) it is not. The run must keep the calibration set's."""
    from stellartune.evaluation.metrics import best_threshold

    train, evaluation = goemotions_records("train", 0, 400), goemotions_records("dev", 0, 120)
    names = sorted({name for row in train for name in row["labels"]})
    calibration = [{"text": row["text"], "labels": names} for row in goemotions_records("train", 400, 40)]
    with caplog.at_level("INFO", logger="stellartune"):
        model = stellartune.fit(train=train, eval=evaluation, calibration=calibration, output=str(tmp_path / "run"),
                                max_steps=8, batch_size=32, lr=3e-4, precision="fp32", progress=False)
    assert "the decision threshold is chosen on --calibration (40 examples), not on the evaluation data" in caplog.text
    assert model.metrics["threshold"] == model.task.threshold == 0.05
    scored = [json.loads(line) for line in (tmp_path / "run" / "eval_predictions.jsonl").read_text().splitlines()]
    probabilities = [[row["scores"][name] for name in model.labels] for row in scored]
    gold = [[float(name in row["gold"]) for name in model.labels] for row in scored]
    import numpy as np

    assert best_threshold(np.array(probabilities), np.array(gold)) != 0.05  # the evaluation data's own differs


def test_without_calibration_data_a_part_of_training_is_held_out_for_the_threshold(tmp_path, caplog):
    with caplog.at_level("INFO", logger="stellartune"):
        stellartune.fit(train=goemotions_records("train", 0, 300), eval=goemotions_records("dev", 0, 60),
                        output=str(tmp_path / "run"), max_steps=2, batch_size=32, progress=False)
    assert ("the decision threshold is chosen on 30 training rows held out for it (--calibration-split 0.1; or give "
            "--calibration), not on the evaluation data") in caplog.text


def test_the_demo_runs_into_its_own_folder_and_never_into_a_users(tmp_path):
    result = cli("demo", "--output", str(tmp_path / "demo"), "--epochs", "0.02")
    assert result.returncode == 0, result.stderr
    assert "predictions for new sentences" in result.stderr and (tmp_path / "demo" / "model").is_dir()
    assert (tmp_path / "demo" / ".stellartune-output").exists()  # its own: `make demo` again replaces it
    notes = notes_folder(tmp_path)
    before = contents(notes)
    assert "holds files stellartune did not write" in one_line_error(cli("demo", "--output", str(notes)))
    assert contents(notes) == before


def test_a_finished_runs_checkpoints_go_and_nothing_else_in_their_folder(tmp_path):
    from stellartune.atomic import atomic_folder
    from stellartune.training.checkpoint import remove_checkpoints

    folder = tmp_path / "run" / "checkpoints"
    with atomic_folder(folder / "step-00000010") as written:  # as save_checkpoint writes one
        (written / "model.safetensors").write_bytes(b"weights")
    (folder / "step-00000020-mine").mkdir()  # a user's folder that only looks like one
    (folder / "step-00000020-mine" / "keep.txt").write_text("mine")
    (folder / "notes.txt").write_text("mine too")
    (folder / ".tmp-step-drafts").mkdir()  # a user's folder named like stellartune's temporary ones
    (folder / ".tmp-step-drafts" / "draft.txt").write_text("mine")
    remove_checkpoints(folder)
    assert sorted(p.name for p in folder.iterdir()) == [".tmp-step-drafts", "notes.txt", "step-00000020-mine"]
    assert (folder / "step-00000020-mine" / "keep.txt").read_text() == "mine"
    (folder / "notes.txt").unlink()
    shutil.rmtree(folder / ".tmp-step-drafts")
    (folder / "step-00000020-mine" / ".stellartune-output").touch()  # marked: stellartune's to remove
    remove_checkpoints(folder)
    assert not folder.exists()  # emptied, so the folder goes too
