"""A report opened in a real headless Chromium (Debian's `chromium`, driven by Playwright): what loaded,
what the console said, and what each section drew. Also a script, for the screenshots in docs/:

    .venv/bin/python tests/browser.py runs/demo/report.html docs/report.png
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# per section: its charts (svg), the marks they drew (paths, lines, text) and its table rows
SECTIONS_SCRIPT = """() => [...document.querySelectorAll('section')].map(s => ({
    id: s.id,
    charts: s.querySelectorAll('svg').length,
    drawn: [...s.querySelectorAll('svg')].map(svg => {
        const box = svg.getBoundingClientRect();
        return {width: box.width, height: box.height, marks: svg.querySelectorAll('path, use, text').length};
    }),
    rows: s.querySelectorAll('tbody tr').length,
}))"""


def need_chromium() -> str:
    """Chromium's path; without it a skip that says why, or under CI=true a failure: a report check that
    skipped would pass while checking nothing."""
    if CHROMIUM is None:
        message = "needs Chromium for the browser check: apt-get install chromium (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but Chromium is missing: {message}")
        pytest.skip(message)
    return CHROMIUM


@contextlib.contextmanager
def browser_page():
    """(a page of a real headless Chromium, the list its console errors, page errors and failed requests go to)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=need_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            errors = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("requestfailed", lambda request: errors.append(f"failed to load {request.url}"))
            yield page, errors
        finally:
            browser.close()


def open_report(path: Path, screenshot: Path | None = None) -> dict:
    """{"errors": console errors and page errors, "sections": what each drew, "title": ...}."""
    with browser_page() as (page, errors):
        page.goto(Path(path).resolve().as_uri(), wait_until="load")
        found = {"errors": errors, "title": page.title(), "sections": page.evaluate(SECTIONS_SCRIPT)}
        if screenshot:
            page.screenshot(path=str(screenshot), full_page=True)
        return found


if __name__ == "__main__":
    report, image = sys.argv[1:3]
    if not Path(report).is_file():
        sys.exit(f"{report}: no such report")
    print(open_report(Path(report), Path(image))["errors"] or f"wrote {image}")
