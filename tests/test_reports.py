"""Run reports: one self-contained HTML page per run, opened in a real headless Chromium."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from browser import need_chromium, open_report
from conftest import data_file, tsv_slice

import stellartune

# the sections each kind of run's report holds (ids: section titles), after "run" and "training"
TASK_SECTIONS = {
    "classification": ["classes", "calibration", "examples", "length"],
    "pairs": ["classes", "calibration", "examples", "length"],
    "multi-label": ["labels", "length"],
    "regression": ["predictions", "length"],
    "ner": ["entity-types"],
    "qa": ["answers"],
}
FETCHED = re.compile(r"""(src|href)\s*=\s*["']?\s*(https?:|//)|url\(\s*["']?\s*(https?:|//)|@import|<script|<link""",
                     re.I)


def assert_self_contained(page: str) -> None:
    """Nothing a browser would fetch: no scripts, stylesheets, images or fonts from elsewhere."""
    assert not FETCHED.search(page), FETCHED.search(page).group(0)


@pytest.mark.parametrize("kind", list(TASK_SECTIONS))
def test_every_run_writes_a_self_contained_report_that_a_browser_draws(short_runs, kind, tmp_path):
    report = short_runs[kind] / "report.html"
    assert report.is_file()
    assert_self_contained(report.read_text())
    need_chromium()
    shown = open_report(report, tmp_path / "report.png")
    assert shown["errors"] == []
    sections = {s["id"]: s for s in shown["sections"]}
    assert list(sections) == ["run", "training", *TASK_SECTIONS[kind]]
    assert sections["run"]["rows"] >= 10  # settings and final metrics
    # loss, learning rate, throughput and at least one evaluation metric, each a drawn chart
    assert sections["training"]["charts"] >= 4
    for section in shown["sections"][1:]:
        assert section["charts"] or section["rows"], section["id"]
        for chart in section["drawn"]:
            assert chart["width"] > 200 and chart["height"] > 100 and chart["marks"] > 20, (section["id"], chart)
    image = (tmp_path / "report.png").read_bytes()
    assert image.startswith(b"\x89PNG") and len(image) > 50_000  # a full page, not a blank one


class TableReader(HTMLParser):
    """The cells of each table in a page, under the title (h3) before it."""

    def __init__(self):
        super().__init__()
        self.tables, self.title, self.cell, self.row = {}, "", None, None
        self.in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "h3":
            self.in_title, self.title = True, ""
        elif tag == "tr":
            self.row = []
        elif tag == "td":
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "h3":
            self.in_title = False
            self.tables[self.title] = []
        elif tag == "td":
            self.row.append(self.cell)
            self.cell = None
        elif tag == "tr" and self.row:
            self.tables[self.title].append(self.row)

    def handle_data(self, data):
        if self.in_title:
            self.title += data
        elif self.cell is not None:
            self.cell += data


def test_flipped_labels_rank_among_the_likely_label_errors(tmp_path):
    """20 known rows of 200 of an SST-2 evaluation file get the other label; a model trained on a clean
    slice lists most of them among the report's likely label errors, at 3x their share of the file or more.
    (The model gets about 1 in 5 rows wrong before any flip: the flipped rows it got wrong look right to it.)"""
    train = tsv_slice(data_file("sst2/train.tsv"), tmp_path / "train.tsv", 1500, start=20000)
    lines = data_file("sst2/dev.tsv").read_text().splitlines()
    header, rows = lines[0], [line.split("\t") for line in lines[1:201]]
    flipped = set(range(5, 200, 10))  # rows 5, 15, ..., 195
    for i in flipped:
        rows[i][1] = "0" if rows[i][1] == "1" else "1"
    (tmp_path / "dev.tsv").write_text("\n".join([header] + ["\t".join(r) for r in rows]) + "\n")
    stellartune.fit(train=str(train), eval=str(tmp_path / "dev.tsv"), output=str(tmp_path / "run"), epochs=1,
                    pooling="mean", lr=2e-4, batch_size=16, progress=False)
    reader = TableReader()
    reader.feed((tmp_path / "run" / "report.html").read_text())
    suspects = [row[1] for row in reader.tables["Likely label errors"]]
    flipped_texts = {rows[i][0].strip() for i in flipped}
    found = sum(text in flipped_texts for text in suspects)
    assert found >= 12, f"{found} of the 20 flipped rows among the {len(suspects)} likely label errors"
    assert found / len(suspects) >= 0.3, f"{len(suspects)} rows listed for {found} flipped ones"


def test_report_command_rebuilds_a_report_and_compares_runs(short_runs, tmp_path):
    runs = [short_runs["classification"], short_runs["pairs"]]
    (runs[0] / "report.html").unlink()
    rebuilt = subprocess.run([sys.executable, "-m", "stellartune.cli", "report", str(runs[0])], capture_output=True,
                             text=True, timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (runs[0] / "report.html").is_file()
    compared = subprocess.run([sys.executable, "-m", "stellartune.cli", "report", *map(str, runs), "--output",
                               str(tmp_path / "compare.html")], capture_output=True, text=True, timeout=300)
    assert compared.returncode == 0, compared.stderr
    page = (tmp_path / "compare.html").read_text()
    assert_self_contained(page)
    reader = TableReader()
    reader.feed(page)
    table = reader.tables["Runs"]
    assert [row[0] for row in table] == [run.name for run in runs]
    assert all(row[1] == "minilm" for row in table)
    charts = re.findall(r"<svg.*?</svg>", page, re.S)
    for title in ("Training loss", "Evaluation accuracy"):  # overlaid: a legend entry per run
        chart = next(svg for svg in charts if f">{title}<" in svg)
        assert all(f">{run.name}<" in chart for run in runs), title
    need_chromium()
    shown = open_report(tmp_path / "compare.html")
    assert shown["errors"] == []
    assert shown["sections"][0]["charts"] >= 2


def test_labels_with_dollar_signs_are_drawn_as_text(tmp_path):
    """matplotlib reads "$...$" as TeX unless told not to: "cost $5" must neither fail the report nor change."""
    names = {"0": "cost $5", "1": "$\\foo$ price"}
    rows = [line.rsplit("\t", 1) for line in data_file("sst2/train.tsv").read_text().splitlines()[1:121]]
    records = [{"text": text, "label": names[label]} for text, label in rows]
    stellartune.fit(train=records, output=str(tmp_path / "run"), max_steps=2, batch_size=16, progress=False)
    page = (tmp_path / "run" / "report.html").read_text()
    assert ">cost $5<" in page and ">$\\foo$ price<" in page
    result = subprocess.run([sys.executable, "-m", "stellartune.cli", "report", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_report_of_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "stellartune.cli", "report", str(tmp_path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip() == f"error: {tmp_path}: not a finished stellartune run (no config.yaml or metrics.json)"


def test_report_to_tensorboard_logs_what_the_run_log_holds(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train = tsv_slice(data_file("sst2/train.tsv"), tmp_path / "train.tsv", 200)
    stellartune.fit(train=str(train), output=str(tmp_path / "run"), max_steps=8, eval_steps=4, log_steps=2,
                    batch_size=16, report_to="tensorboard", progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(tmp_path / "run" / "trackers" / "run"))
    events.Reload()
    losses = [(e.step, e.value) for e in events.Scalars("loss")]
    accuracy = [(e.step, e.value) for e in events.Scalars("eval/accuracy")]
    assert losses == [(r["step"], pytest.approx(r["loss"])) for r in records if "loss" in r]
    assert accuracy == [(r["step"], pytest.approx(r["eval"]["accuracy"])) for r in records if "eval" in r]
    assert len(losses) == 4 and len(accuracy) == 2


def test_report_to_a_tracker_that_is_not_installed_is_one_line(tmp_path):
    from accelerate.tracking import get_available_trackers

    if "aim" in {str(t) for t in get_available_trackers()}:
        pytest.skip("aim is installed here")
    train = tsv_slice(data_file("sst2/train.tsv"), tmp_path / "train.tsv", 50)
    result = subprocess.run([sys.executable, "-m", "stellartune.cli", "train", "--train", str(train), "--output",
                             str(tmp_path / "run"), "--report-to", "tensorboard,aim"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == ("error: --report-to aim: the aim package is not installed; "
                                                      "pip install aim, or leave out --report-to aim")
    assert not (tmp_path / "run").exists()
