"""Shared test helpers: the real data beside the project, small slices of it, quiet training."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
    """A short run with the default (standard Hugging Face) head, shared by save/load/predict tests."""
    import stellartune

    folder = tmp_path_factory.mktemp("small_sst2")
    train = tsv_slice(data_file("sst2/train.tsv"), folder / "train.tsv", 400)
    dev = tsv_slice(sst2_dev, folder / "dev.tsv", 200)
    stellartune.fit(train=str(train), eval=str(dev), output=str(folder / "run"), max_steps=15, batch_size=16,
                    lr=1e-4, progress=False)
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
