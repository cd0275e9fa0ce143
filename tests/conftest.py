"""Shared test helpers: the real data beside the project, small slices of it, quiet training."""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # few_shot.py: its samples
FEW_SHOT_SEEDS = (0, 1)


def pytest_sessionstart(session):
    """In CI the datasets must be there: a suite that skips every real test would pass while testing nothing."""
    if os.environ.get("CI") == "true" and not DATA.is_dir():
        pytest.exit(f"CI=true but the real datasets are missing: {DATA} does not exist (CI clones the project "
                    "beside ../shared)", returncode=1)


def data_file(relative: str) -> Path:
    """A file of ../shared/data, or a skip saying why (a user's fresh clone has no such folder)."""
    path = DATA / relative
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {path} is missing")
        pytest.skip(f"needs the real datasets in {DATA} (absent: {path}); they live beside the project in CI")
    return path


def tsv_slice(source: Path, target: Path, rows: int, start: int = 0) -> Path:
    """The header and `rows` data rows (from `start`) of a GLUE-style TSV, as a new TSV."""
    with open(source, encoding="utf-8-sig", newline="") as handle:
        lines = handle.read().splitlines()
    target.write_text("\n".join([lines[0]] + lines[1 + start : 1 + start + rows]) + "\n", encoding="utf-8")
    return target


def conll_slice(source, target, sentences: int, tags=lambda tags: tags):
    """The first sentences of a CoNLL file, rewritten as `word tag` lines (tags optionally mapped)."""
    from stellartune.data.conll import read_conll

    rows = read_conll(source).rows[:sentences]
    target.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in zip(r["tokens"], tags(r["tags"]))) for r in rows)
                      + "\n", encoding="utf-8")
    return target


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def sst2_dev() -> Path:
    return data_file("sst2/dev.tsv")


@pytest.fixture(scope="session")
def small_sst2_run(tmp_path_factory, sst2_dev) -> Path:
    """A short run with the architecture's own head (a standard Hugging Face checkpoint), shared by
    save/load/predict tests."""
    import stellartune

    folder = tmp_path_factory.mktemp("small_sst2")
    train = tsv_slice(data_file("sst2/train.tsv"), folder / "train.tsv", 400)
    dev = tsv_slice(sst2_dev, folder / "dev.tsv", 200)
    stellartune.fit(train=str(train), eval=str(dev), output=str(folder / "run"), max_steps=15, batch_size=16,
                    lr=1e-4, pooling="model", progress=False)
    return folder / "run"


def imdb_reviews(split: str, per_label: int) -> list[tuple[str, str]]:
    """(text, pos|neg) of the first `per_label` reviews of each label in aclImdb's `split`
    (train or test), with the HTML line breaks the reviews contain turned into spaces."""
    import tarfile

    wanted, reviews = {"pos": per_label, "neg": per_label}, []
    with tarfile.open(data_file("imdb/aclImdb_labeled.tar.gz")) as archive:
        for member in archive:
            parts = member.name.split("/")  # aclImdb/train/pos/123_9.txt
            if len(parts) == 4 and parts[1] == split and wanted.get(parts[2], 0) > 0:
                text = archive.extractfile(member).read().decode("utf-8")
                reviews.append((text.replace("<br />", " "), parts[2]))
                wanted[parts[2]] -= 1
                if not any(wanted.values()):
                    break
    return reviews


FILLER = ["The meeting was held on a Tuesday in the old town hall.", "Several people arrived early and took seats near the back.",
          "The weather outside was grey, with a light wind from the west.", "A committee member read the minutes of the last session aloud.",
          "Coffee and biscuits were served in the corridor during the break.", "The agenda listed budget items, road repairs and the library hours.",
          "Someone asked about parking near the station, and the chair took a note.", "The clock on the wall was a few minutes slow, as it had been for years.",
          "Papers were passed along the rows and collected again at the end.", "A reporter from the local paper sat by the window with a notebook."]
VERDICTS = {"positive": ["In the end, everyone agreed the result was excellent.", "Finally, the verdict was clear: a wonderful success.",
                         "All told, people left delighted and full of praise."],
            "negative": ["In the end, everyone agreed the result was terrible.", "Finally, the verdict was clear: an awful failure.",
                         "All told, people left furious and full of complaints."]}


def last_paragraph_documents(count: int, seed: int) -> list[dict]:
    """Documents of about 200 tokens whose label only their last sentence says, after neutral paragraphs that
    every document shares in some order: read past the first 128 tokens, or guess."""
    import random

    rng = random.Random(seed)
    return [{"text": " ".join(rng.choices(FILLER, k=16) + [rng.choice(VERDICTS[label])]), "label": label}
            for label in ("positive", "negative") * (count // 2)]


@pytest.fixture(scope="session")
def last_paragraph_set(tmp_path_factory) -> tuple[Path, Path]:
    """(training file, test file) of `last_paragraph_documents`."""
    folder = tmp_path_factory.mktemp("last_paragraph")
    return (write_csv(folder / "train.csv", last_paragraph_documents(240, 0)),
            write_csv(folder / "test.csv", last_paragraph_documents(60, 1)))


def fit_fp32(folder: Path, name: str, train, steps: int = 30, batch_size: int = 16, **settings) -> Path:
    """A short fp32 run: served and predicted results then agree to float rounding, whatever the batching.
    Long enough that each model gives different answers to different inputs (a comparison of constant
    answers proves nothing; the serve tests assert it), logged and evaluated every few steps, so that its
    report has curves to draw."""
    import stellartune

    stellartune.fit(train=str(train), output=str(folder / name), max_steps=steps, batch_size=batch_size, precision="fp32",
                    progress=False, log_steps=2, eval_steps=10, **settings)
    return folder / name


@pytest.fixture(scope="session")
def short_runs(tmp_path_factory, few_shot_runs, last_paragraph_set) -> dict[str, Path]:
    """Short fp32 runs of each kind of model a user serves, exports or reports on, on slices of the real data."""
    folder = tmp_path_factory.mktemp("served")
    squad = json.loads(data_file("squad_v1.1/dev-v1.1.json").read_text())
    (folder / "squad.json").write_text(json.dumps({"version": "1.1", "data": squad["data"][10:11]}))
    return {
        "classification": fit_fp32(folder, "sst2", tsv_slice(data_file("sst2/train.tsv"), folder / "sst2.tsv", 300)),
        "pairs": fit_fp32(folder, "mrpc", tsv_slice(data_file("mrpc/train.tsv"), folder / "mrpc.tsv", 300)),
        "multi-label": fit_fp32(folder, "goemotions", tsv_slice(data_file("goemotions/train.tsv"),
                                                                 folder / "goemotions.tsv", 400, start=1)),
        "ner": fit_fp32(folder, "ner", data_file("conll2003/valid.txt"), max_length=64),
        "qa": fit_fp32(folder, "qa", folder / "squad.json", max_length=192, batch_size=8),  # 3 distinct of 5 answers
        "regression": fit_fp32(folder, "stsb", tsv_slice(data_file("stsb/train.tsv"), folder / "stsb.tsv", 300)),
        "few-shot": few_shot_runs[0],
        # windows of 128 tokens (--long-texts auto); with no --max-length these ~220-token texts would fit in one
        "long-texts": fit_fp32(folder, "long", last_paragraph_set[0], max_length=128),
    }


@pytest.fixture(scope="session")
def few_shot_runs(tmp_path_factory) -> dict[int, Path]:
    """`stellartune train --train <8 per class of SST-2> --seed S`, no other flag, as benchmarks/few_shot.py runs
    it (its sampling code), on the two seeds of its short mode."""
    import stellartune
    from few_shot import sample, sst2

    data_file("sst2/train.tsv")
    folder, runs = tmp_path_factory.mktemp("few_shot"), {}
    for seed in FEW_SHOT_SEEDS:
        rows = [{"sentence": text, "label": label} for text, _, label in sample(sst2()[0], 8, seed)]
        runs[seed] = folder / f"run-{seed}"
        logger, log = logging.getLogger("stellartune"), logging.FileHandler(folder / f"run-{seed}.log")
        level = logger.level
        logger.addHandler(log)  # what the run said, beside its folder
        logger.setLevel(logging.INFO)
        try:
            stellartune.fit(train=str(write_csv(folder / f"train-{seed}.csv", rows)), output=str(runs[seed]),
                            seed=seed, progress=False)
        finally:
            logger.removeHandler(log)
            logger.setLevel(level)
            log.close()
    return runs


def example_inputs(kind: str) -> tuple[dict, list[str], list[str] | None]:
    """The request body for 5 real examples of each kind, and its texts and second texts."""
    if kind == "pairs":
        rows = [line.split("\t") for line in data_file("mrpc/dev.tsv").read_text().splitlines()[1:6]]
        texts, pairs = [r[3].strip() for r in rows], [r[4].strip() for r in rows]
        return {"texts": texts, "text_pairs": pairs}, texts, pairs
    if kind == "regression":
        rows = [line.split("\t") for line in data_file("stsb/dev.tsv").read_text().splitlines()[1:6]]
        texts, pairs = [r[7].strip() for r in rows], [r[8].strip() for r in rows]
        return {"texts": texts, "text_pairs": pairs}, texts, pairs
    if kind == "long-texts":  # long documents and a short text
        texts = [row["text"] for row in last_paragraph_documents(4, 2)] + ["A wonderful success."]
        return {"texts": texts}, texts, None
    if kind == "qa":
        paragraph = json.loads(data_file("squad_v1.1/dev-v1.1.json").read_text())["data"][2]["paragraphs"][0]
        questions, contexts = [q["question"] for q in paragraph["qas"][:5]], [paragraph["context"]] * 5
        return {"questions": questions, "contexts": contexts}, questions, contexts
    source = {"classification": "sst2/dev.tsv", "few-shot": "sst2/dev.tsv", "multi-label": "goemotions/dev.tsv", "ner": "sst2/dev.tsv"}[kind]
    texts = [line.split("\t")[0].strip() for line in data_file(source).read_text().splitlines()[1:6]]
    if kind == "ner":
        texts = ["Peter Blackburn met officials of the European Union in Brussels.", *texts[:4]]
    return {"texts": texts}, texts, None
