"""Files and folders that are complete or absent: written under a temporary name, then renamed.

A reader (a resumed run, a concurrent run, `load`) never sees half of one, whatever kills the writer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_folder(final: Path, tmp: Path | None = None) -> Iterator[Path]:
    """A fresh temporary folder to fill (default `.tmp-<name>` beside `final`); once the block ends
    without an error its files are flushed to disk and it replaces `final`."""
    final = Path(final)
    tmp = tmp or final.with_name(f".tmp-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    yield tmp
    for file in tmp.rglob("*"):  # data on disk before the rename makes it visible
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """A temporary path to write (`<name>.tmp` beside `final`) that replaces `final` once the block ends."""
    final = Path(final)
    tmp = final.with_name(final.name + ".tmp")
    yield tmp
    os.replace(tmp, final)
