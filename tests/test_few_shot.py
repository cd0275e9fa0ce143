"""Few labelled examples and no flag (issue 31): 8 examples per class of SST-2, the samples and SetFit figures
of benchmarks/few_shot.py (its sampling code, its saved results), scored on all of SST-2 dev. The serve and
export tests compare this model's answers too (`short_runs["few-shot"]`)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from conftest import data_file
from few_shot import RESULTS, key

import stellartune

pytestmark = pytest.mark.slow


def test_eight_per_class_of_sst2_match_setfit_and_beat_the_majority_class(few_shot_runs):
    """On the mean of the seeds: at least SetFit's less 1 point and the majority class's plus 10; on each seed
    above the majority class by 5 points (one sample of 8 per class moves either side by several points: SetFit
    itself scores 0.597 on seed 0, under the majority class plus 10)."""
    dev = data_file("sst2/dev.tsv")
    labels = [line.rsplit("\t", 1)[1] for line in dev.read_text().splitlines()[1:]]
    majority = max(labels.count(label) for label in set(labels)) / len(labels)
    saved = json.loads(RESULTS.read_text())
    ours = {seed: stellartune.load(run).evaluate(str(dev))["accuracy"] for seed, run in few_shot_runs.items()}
    setfit = {seed: saved[key("setfit", "sst2", 8, seed, 1000)]["accuracy"] for seed in few_shot_runs}
    assert statistics.mean(ours.values()) >= statistics.mean(setfit.values()) - 0.01, (ours, setfit)
    assert statistics.mean(ours.values()) >= majority + 0.10, (ours, majority)
    assert min(ours.values()) >= majority + 0.05, (ours, majority)


def test_a_few_shot_run_says_what_it_did_and_scores_its_training_examples(few_shot_runs):
    run = few_shot_runs[0]
    log = run.with_suffix(".log").read_text()
    assert "few-shot: on (8 training examples per class" in log
    assert "contrastive stage" in log and "head fitted by logistic regression" in log
    assert "no held-out evaluation" in log
    assert len((run / "eval_predictions.jsonl").read_text().splitlines()) == 16
    assert not Path(run / "checkpoints").exists()
