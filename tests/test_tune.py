"""`stellartune tune`: a real search on an SST-2 slice keeps a working best model, prunes an absurd trial, resumes
after SIGKILL without repeating finished trials, and lets two processes share one SQLite study."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest
from browser import open_report
from conftest import data_file, tsv_slice
from optuna.trial import TrialState

pytestmark = pytest.mark.slow
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
SPACE = "epochs: 2\nbatch_size: 16\nlr: {low: 5e-5, high: 2e-4, log: true}\n"  # short trials, each evaluated twice


@pytest.fixture(scope="module")
def sst2_slice(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tune_data")
    (folder / "space.yaml").write_text(SPACE)
    return (tsv_slice(data_file("sst2/train.tsv"), folder / "train.tsv", 300),
            tsv_slice(data_file("sst2/dev.tsv"), folder / "dev.tsv", 150), folder / "space.yaml")


def tune_command(data, output, trials: int, *extra) -> list[str]:
    train, dev, space = data
    return [sys.executable, "-m", "stellartune.cli", "tune", "--train", str(train), "--eval", str(dev), "--output",
            str(output), "--trials", str(trials), "--space", str(space), "--no-progress", *extra]


def run(command, **options) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, **options)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def study_of(output) -> optuna.Study:
    return optuna.load_study(study_name=output.name, storage=f"sqlite:///{output / 'study.db'}")


def test_search_keeps_the_best_model_and_prunes_an_absurd_trial(tmp_path, sst2_slice):
    output = tmp_path / "search"
    first = run(tune_command(sst2_slice, output, 3))
    assert "search space" in first.stderr and "trial 0" in first.stderr
    study = study_of(output)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2 + [study.trials[2].state]
    assert study.trials[0].user_attrs.get("defaults")  # the first trial runs the no-flag defaults
    # a learning rate no one would choose, queued as a user of Optuna would: the pruner stops it at its first epoch
    study.enqueue_trial({"lr": 5.0})
    resumed = run(tune_command(sst2_slice, output, 4, "--resume"))
    absurd = study_of(output).trials[3]
    assert absurd.params["lr"] == 5.0 and absurd.state == TrialState.PRUNED, resumed.stderr[-2000:]
    assert list(absurd.intermediate_values) == [100]  # one evaluation, then pruned
    assert "trial 3 pruned after 1 epochs" in resumed.stderr

    summary = json.loads((output / "search.json").read_text())
    best = study_of(output).best_trial
    assert summary["best_trial"] == best.number and summary["defaults_trial"] == 0
    assert (output / "best").resolve().name == f"trial-{best.number:04d}"
    assert sorted(p.name for p in output.glob("trial-*")) == [f"trial-{best.number:04d}"]  # the others removed
    # the kept model is the best trial's: evaluated again from the folder, it scores what the search recorded
    scored = run([sys.executable, "-m", "stellartune.cli", "evaluate", "--model", str(output / "best"), "--data",
                  str(sst2_slice[1]), "--output", str(tmp_path / "metrics.json"), "--precision", "fp32"])
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == pytest.approx(best.value, abs=0.007), scored.stdout
    predicted = run([sys.executable, "-m", "stellartune.cli", "predict", "--model", str(output / "best"), "--input",
                     str(sst2_slice[1])])
    assert len({json.loads(line)["label"] for line in predicted.stdout.splitlines()}) == 2
    assert "trial 3 (pruned)" in (output / "study.html").read_text()  # the pruned trial's curve, labelled
    page = open_report(output / "study.html")
    drawn = {s["id"]: s for s in page["sections"]}
    assert page["errors"] == [] and drawn["trials"]["rows"] == 4, page
    for section in ("result", "optimisation-history", "evaluations-and-pruning"):
        assert drawn[section]["charts"] + drawn[section]["rows"] >= 1, drawn[section]
    assert all(chart["marks"] > 10 for section in ("optimisation-history", "evaluations-and-pruning")
               for chart in drawn[section]["drawn"]), drawn
    assert (output / "trials.csv").read_text().count("\n") == 5  # a header and the 4 trials

    refused = subprocess.run(tune_command(sst2_slice, output, 4), capture_output=True, text=True)
    assert refused.returncode == 2 and "add --resume" in refused.stderr


def third_trial_running(output) -> bool:
    """The third trial is training: two finished, and one running with all its settings drawn (a kill while
    Optuna still draws them leaves a trial of fewer settings, which is run again with those fixed and the rest
    drawn anew). Read-only, as a person would peek at the database: the search must not wait on the test's
    reads."""
    if not (output / "study.db").exists():  # (opening it would create it)
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{output / 'study.db'}?mode=ro", uri=True)) as db:
            trials = db.execute("SELECT t.state, COUNT(p.param_id) FROM trials t "
                                "LEFT JOIN trial_params p ON p.trial_id = t.trial_id GROUP BY t.trial_id").fetchall()
    except sqlite3.OperationalError:  # no table yet
        return False
    finished = [count for state, count in trials if state in ("COMPLETE", "PRUNED")]
    return len(finished) >= 2 and any(state == "RUNNING" and count == max(finished) for state, count in trials)


def test_sigkill_then_resume_repeats_no_finished_trial(tmp_path, sst2_slice):
    output = tmp_path / "search"
    process = subprocess.Popen(tune_command(sst2_slice, output, 4), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    for _ in range(600):  # polls every 0.5 s: a guard against hanging, not a speed check
        if third_trial_running(output):
            break
        assert process.poll() is None
        time.sleep(0.5)
    else:
        pytest.fail("the search did not reach its third trial")
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    before = {t.number: (t.state, t.value, t.datetime_complete) for t in study_of(output).get_trials(states=FINISHED)}

    resumed = run(tune_command(sst2_slice, output, 4, "--resume"))
    trials = study_of(output).trials
    assert {t.number: (t.state, t.value, t.datetime_complete) for t in trials if t.number in before} == before
    killed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(killed) == 1 and "left unfinished by a process that ended" in resumed.stderr
    assert [t.params for t in trials if t.number > killed[0].number][0] == killed[0].params  # run again
    assert len([t for t in trials if t.state in FINISHED]) == 4


def test_two_processes_share_one_study(tmp_path, sst2_slice):
    output = tmp_path / "search"
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen(tune_command(sst2_slice, output, 4, "--resume"), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, env=one_thread) for _ in range(2)]
    errors = [p.communicate()[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], errors
    trials = study_of(output).trials
    assert len([t for t in trials if t.state in FINISHED]) == 4 and len(trials) == 4
    assert len({t.user_attrs["process"] for t in trials}) == 2  # both worked on it


@pytest.mark.parametrize("entry, says", [("learning_rate: {low: 1e-5, high: 1e-3}", "learning_rate: not a setting of train"),
                                         ("max_length: [64, 128]", "max_length: fixed for the whole search"),
                                         ("epochs: {low: 1}", "epochs: a range takes low, high")])
def test_a_bad_space_file_stops_with_one_line_before_any_work(tmp_path, sst2_slice, entry, says):
    space = tmp_path / "space.yaml"
    space.write_text(entry + "\n")
    done = subprocess.run(tune_command((*sst2_slice[:2], space), tmp_path / "search", 4), capture_output=True,
                          text=True)
    assert done.returncode == 2 and done.stderr.strip() == f"error: {space}: {says}" or says in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "search").exists()
