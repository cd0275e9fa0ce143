"""Files and folders that are complete or absent: written under a temporary name, then renamed.

A reader (a resumed run, a concurrent run, `load`) never sees half of one, whatever kills the writer.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from .errors import StellarError, some

MARKER = ".stellartune-output"  # left in every folder stellartune writes: only such a folder is ever replaced


def temporary_name(final: Path, prefix: str = "", suffix: str = "") -> Path:
    """A name beside `final` that no other process (or thread) writing `final` at once uses."""
    return final.with_name(f"{prefix}{final.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def ours(folder: Path) -> bool:
    """Absent, empty, or written by stellartune (its marker inside): safe to replace."""
    return not folder.exists() or (folder.is_dir() and (not any(folder.iterdir()) or (folder / MARKER).exists()))


def mark_ours(folder: Path) -> None:
    """Say in `folder` that stellartune wrote it (and so may replace it)."""
    (folder / MARKER).write_text("written by stellartune, which may replace this folder whole\n")


def refuse_foreign(folder: Path) -> None:
    """One line for a folder that holds files stellartune did not write: it never deletes them."""
    if not folder.is_dir():
        raise StellarError(f"{folder}: exists and is not a folder; choose another output folder")
    names = sorted(p.name for p in folder.iterdir())
    raise StellarError(f"{folder}: holds files stellartune did not write ({some(names, 4)}); choose a new folder, "
                       "or add --overwrite (overwrite=True) to write into it, keeping its other files")


@contextlib.contextmanager
def atomic_folder(final: Path, megabytes: float | None = None, overwrite: bool = False) -> Iterator[Path]:
    """A fresh temporary folder to fill (`.tmp-<name>.<pid>-<random>` beside `final`); once the block ends
    without an error its files are flushed to disk and it replaces `final`. `final` is replaced whole only
    when stellartune wrote it (`ours`); a folder of anything else is refused before any work, or with
    `overwrite` receives the new files beside its own. A full or read-only disk stops with one line (saying
    what the folder needs, `megabytes`, against what is free)."""
    final = Path(final)
    if final.name in ("", ".", ".."):
        final = final.resolve()
    if not ours(final) and not overwrite:
        refuse_foreign(final)
    tmp = temporary_name(final, prefix=".tmp-")
    try:
        tmp.mkdir(parents=True)
        yield tmp
        mark_ours(tmp)
        for file in tmp.rglob("*"):  # data on disk before the rename makes it visible
            if file.is_file():
                with open(file, "rb") as handle:
                    os.fsync(handle.fileno())
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)  # a write that failed (a full disk) leaves nothing behind
        fault = as_os_error(e)
        if fault is None or not is_write_fault(fault):
            raise
        needs = (f"it needs about {megabytes:,.0f} MB and {shutil.disk_usage(tmp.parent).free / 1e6:,.0f} MB are "
                 "free there; " if megabytes and fault.errno in (errno.ENOSPC, errno.EDQUOT) else "")
        raise write_fault(fault, f"{final}: cannot write it", f"{needs}free some space, or choose another "
                          "--output") from None
    if ours(final):
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
    else:  # --overwrite on a folder of the user's: the new files go in, the user's other files stay
        (tmp / MARKER).unlink()
        if clashes := [item.name for item in tmp.iterdir() if (final / item.name).is_dir()]:
            shutil.rmtree(tmp)
            raise StellarError(f"{final}: its folder(s) {some(clashes)} would be replaced by the new files; "
                               "choose a new folder")
        for item in tmp.iterdir():
            os.replace(item, final / item.name)
        tmp.rmdir()


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """A temporary path to write (unique to this process, beside `final`) that replaces `final` once the
    block ends: two processes writing one file at once leave one whole file, never a mix or an error."""
    final = Path(final)
    tmp = temporary_name(final, prefix=".", suffix=".tmp")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed write leaves neither half a file nor a stray one
        raise
    os.replace(tmp, final)


# Faults of the place written to, not of stellartune: each gets one line instead of a traceback.
WRITE_FAULTS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted"}


def as_os_error(error: BaseException) -> OSError | None:
    """The OSError behind a failed write; safetensors reports its own in its message, as
    "I/O error: ... (os error 28)" (0.5 and later) or "IoError(Os { code: 28, ... })" (0.4)."""
    if isinstance(error, OSError):
        return error
    found = re.search(r"os error (\d+)|Os \{ code: (\d+)", str(error))
    code = int(next(group for group in found.groups() if group)) if found else None
    if code is None:  # pyarrow names the fault in its message only: "... error: No space left on device"
        code = next((known for known in WRITE_FAULTS if os.strerror(known) in str(error)), None)
    return OSError(code, os.strerror(code)) if code is not None else None


def is_write_fault(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in WRITE_FAULTS


def write_fault(error: OSError, what: str, advice: str) -> StellarError | OSError:
    """'<what> (no space left on the device); <advice>' for a fault of the place written to; any other
    error as it is (a bug keeps its traceback)."""
    if not is_write_fault(error):
        return error
    return StellarError(f"{what} ({WRITE_FAULTS[error.errno]}); {advice}")
