"""The documentation: the site builds with --strict and its pages open in a real headless Chromium with no
console error, no broken link or anchor and a working search; the settings reference lists every setting; and
the README's tour (which the getting-started page includes) runs as written, as a new user runs it."""

from __future__ import annotations

import ast
import dataclasses
import functools
import html
import http.server
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest
import yaml
from browser import browser_page

from stellartune.config import TrainConfig, setting

ROOT = Path(__file__).resolve().parents[1]
ID = re.compile(r'\bid="([^"]+)"')


def reference_hook():
    """The MkDocs hook that generates the reference pages, imported from its file as MkDocs does."""
    spec = importlib.util.spec_from_file_location("reference_hook", ROOT / "docs" / "hooks" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
                           cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, f"mkdocs build --strict failed:\n{built.stderr[-4000:]}"
    return folder


@pytest.fixture(scope="module")
def served_site(site):
    """The built site over HTTP, as a user's browser gets it (search loads its index with fetch)."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def pages_of(site: Path) -> list[str]:
    """Every page's URL path: one index.html per page."""
    folders = (p.parent.relative_to(site).as_posix() for p in site.rglob("index.html") if "assets" not in p.parts)
    return sorted("/" if folder == "." else f"/{folder}/" for folder in folders)


def target_file(site: Path, path: str) -> Path:
    file = site / unquote(path).lstrip("/")
    return file / "index.html" if path.endswith("/") or file.is_dir() else file


def link_problems(site: Path, page: str, links: list[str], base: str) -> list[str]:
    """The internal links of `page` whose file or anchor does not exist."""
    problems, ids = [], {}
    for link in links:
        url, anchor = urldefrag(link)
        if not url.startswith(base):
            continue
        file = target_file(site, urlparse(url).path)
        if not file.is_file():
            problems.append(f"{page}: {link} -> no such page")
        elif anchor and file.suffix == ".html":
            found = ids.setdefault(file, set(ID.findall(file.read_text(encoding="utf-8"))))
            if unquote(anchor) not in found:
                problems.append(f"{page}: {link} -> no anchor #{anchor}")
    return problems


def open_pages(base: str, pages: list[str]) -> dict[str, dict]:
    """Each page opened in Chromium: its console errors, failed requests and links; then a search."""
    opened = {}
    with browser_page() as (page, errors):
        for path in pages:
            errors.clear()
            # networkidle: the page and what it loads after (the search worker) finish before the next page;
            # leaving at "load" aborts those requests and charges them to the next page
            page.goto(base + path, wait_until="networkidle")
            links = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
            opened[path] = {"errors": list(errors), "links": links}
        opened["search"] = search_results(page, "micro-batching")
    return opened


def search_results(page, query: str) -> list[str]:
    """What the site's search box lists for `query` (the search runs in a worker over search_index.json)."""
    page.goto(page.url.split("#")[0], wait_until="networkidle")
    page.keyboard.press("/")  # the site's shortcut to the search box; typed keys, as the box listens for them
    page.keyboard.type(query)
    page.wait_for_selector(".md-search-result__item", timeout=10_000)
    return page.eval_on_selector_all(".md-search-result__item a", "links => links.map(a => a.href)")


def test_the_site_builds_strict_and_every_page_opens_clean(site, served_site):
    pages = pages_of(site)
    assert len(pages) >= 30, pages
    index = site / "search" / "search_index.json"
    assert index.is_file() and json.loads(index.read_text())["docs"], "the site has no search index"
    opened = open_pages(served_site, pages)
    errors = {path: found["errors"] for path, found in opened.items() if path != "search" and found["errors"]}
    assert not errors, f"console errors on {len(errors)} page(s), such as {dict(list(errors.items())[:2])}"
    problems = [problem for path in pages for problem in link_problems(site, path, opened[path]["links"], served_site)]
    assert not problems, "\n".join(problems)
    assert any("/serving/" in url for url in opened["search"]), opened["search"]
    # every page is linked from the navigation, so a reader finds it
    linked = {urlparse(urldefrag(link)[0]).path for link in opened["/"]["links"]}
    assert set(pages) - linked == set()


def reference_rows(site: Path, page: str, section: str | None = None) -> list[list[str]]:
    """The table cells of a built page, as text; with `section`, of the part under that heading only."""
    page_html = target_file(site, page).read_text(encoding="utf-8")
    if section:
        page_html = page_html[page_html.index(f'id="{section}"'):]
        page_html = page_html[:page_html.find("<h2", 1)]
    rows = re.findall(r"<tr>(.*?)</tr>", page_html, re.S)
    cells = (re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows)
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in row] for row in cells]


def test_the_settings_reference_lists_every_setting_with_its_default(site):
    rows = {row[0]: row for row in reference_rows(site, "/reference/settings/", "training") if row}
    for field in dataclasses.fields(TrainConfig):
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        assert field.name in rows, f"TrainConfig.{field.name} is missing from the settings reference"
        written = yaml.safe_dump(default, default_flow_style=True).removesuffix("\n...\n").strip()
        assert rows[field.name][2] == written, (field.name, rows[field.name])
        assert rows[field.name][4] == field.metadata["help"].replace("\n", " ").strip()
    commands = " ".join(" ".join(row) for row in reference_rows(site, "/reference/commands/"))
    assert "--max-windows" in commands and "--verify-data" in commands


def test_a_setting_without_help_text_stops_the_build():
    @dataclasses.dataclass
    class WithUndocumented:
        documented: int = setting(1, "Has its help text.")
        undocumented: int = 2

    @dataclasses.dataclass
    class Documented:
        documented: int = setting(1, "Has its help text.")

    hook = reference_hook()
    assert "Has its help text." in hook.settings_table(Documented)
    with pytest.raises(hook.PluginError, match="WithUndocumented.undocumented has no help text"):
        hook.settings_table(WithUndocumented)


# --- the README's tour, as written ------------------------------------------------------------------------

def tour_blocks(text: str) -> dict[str, str]:
    """The README's tour sections (the getting-started page includes them): name -> the fenced code."""
    section = r"<!-- --8<-- \[start:(tour-\w+)\] -->\n```\w+\n(.*?)```\n<!-- --8<-- \[end:\1\] -->"
    found = re.findall(section, text, re.S)
    return dict(found)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def json_values(text: str) -> list:
    """Every JSON object printed in `text` (predict prints one per line, curl one without a newline)."""
    decoder, values, position = json.JSONDecoder(), [], 0
    while (start := text.find("{", position)) != -1:
        try:
            value, position = decoder.raw_decode(text, start)
            values.append(value)
        except json.JSONDecodeError:
            position = start + 1
    return values


@pytest.fixture(scope="module")
def tour_folder(tmp_path_factory) -> Path:
    """A folder as `make demo` leaves it: .venv, and the BBC News files the demo writes into runs/demo/data."""
    from stellartune.demo import bbc_news_rows, write_splits

    folder = tmp_path_factory.mktemp("tour")
    (folder / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    write_splits(bbc_news_rows(), folder / "runs" / "demo" / "data")
    return folder


def test_the_readme_tour_runs_as_written(tour_folder, site):
    blocks = tour_blocks((ROOT / "README.md").read_text())
    assert set(blocks) == {"tour-cli", "tour-python"}, blocks.keys()
    started = (ROOT / "docs" / "getting-started.md").read_text()
    assert all(f'--8<-- "README.md:{name}"' in started for name in blocks), "getting started must include the tour"
    shown = " ".join(html.unescape(re.sub(r"<[^>]+>", "", target_file(site, "/getting-started/").read_text())).split())
    lines = [" ".join(line.split()) for block in blocks.values() for line in block.splitlines() if line.strip()]
    assert [line for line in lines if line not in shown] == [], "the getting-started page shows another tour"

    port = str(free_port())
    script = blocks["tour-cli"].replace("8000", port)  # the one change: a port nothing else holds
    cli = subprocess.run(["bash", "-e", "-c", script], cwd=tour_folder, capture_output=True, text=True, timeout=900)
    assert cli.returncode == 0, cli.stderr[-4000:]
    answers = json_values(cli.stdout)
    predicted, served, exported = answers[0], answers[1]["predictions"][0], answers[2]
    assert (predicted["label"], served["label"], exported["label"]) == ("business", "sports", "tech"), answers
    assert json.loads((tour_folder / "metrics.json").read_text())["accuracy"] > 0.9
    assert (tour_folder / "runs" / "tour" / "report.html").is_file() and (tour_folder / "tour.html").is_file()

    (tour_folder / "tour.py").write_text(blocks["tour-python"])
    python = subprocess.run([sys.executable, "tour.py"], cwd=tour_folder, capture_output=True, text=True, timeout=900)
    assert python.returncode == 0, python.stderr[-4000:]
    loop, onnx = [ast.literal_eval(line)[0] for line in python.stdout.splitlines() if line.startswith("[")]
    assert loop["label"] in onnx["scores"] and onnx["label"] == "sports", python.stdout  # the loop: weak at 8 a class
    assert (tour_folder / "compare.html").is_file()
