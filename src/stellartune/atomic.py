"""Files and folders that are complete or absent: written under a temporary name, then renamed.

A reader (a resumed run, a concurrent run, `load`) never sees half of one, whatever kills the writer.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from .errors import StellarError


@contextlib.contextmanager
def atomic_folder(final: Path, tmp: Path | None = None, megabytes: float | None = None) -> Iterator[Path]:
    """A fresh temporary folder to fill (default `.tmp-<name>` beside `final`); once the block ends
    without an error its files are flushed to disk and it replaces `final`. A full or read-only disk
    stops with one line (saying what the folder needs, `megabytes`, against what is free)."""
    final = Path(final)
    tmp = tmp or final.with_name(f".tmp-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        yield tmp
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
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """A temporary path to write (`<name>.tmp` beside `final`) that replaces `final` once the block ends."""
    final = Path(final)
    tmp = final.with_name(final.name + ".tmp")
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
    return OSError(code, os.strerror(code)) if code is not None else None


def is_write_fault(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in WRITE_FAULTS


def write_fault(error: OSError, what: str, advice: str) -> StellarError | OSError:
    """'<what> (no space left on the device); <advice>' for a fault of the place written to; any other
    error as it is (a bug keeps its traceback)."""
    if not is_write_fault(error):
        return error
    return StellarError(f"{what} ({WRITE_FAULTS[error.errno]}); {advice}")
