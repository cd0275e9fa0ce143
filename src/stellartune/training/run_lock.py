"""One run per run folder: a second `train` or `pretrain` into a folder that a live run is writing
stops with one line naming that run, instead of mixing two runs' config, checkpoints and log.

The lock is an `flock` on a file in the folder: the kernel drops it when its process ends, however it
ends (SIGKILL included), so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from ..atomic import write_fault
from ..errors import StellarError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not guarded against a second run
    fcntl = None

LOCK_FILE = ".stellartune.lock"


@contextlib.contextmanager
def run_lock(run_dir: Path, enabled: bool = True, wait: bool = False) -> Iterator[None]:
    """Hold the folder's lock for the block (`enabled`: the main process; other ranks share its run). `wait`:
    until the process holding it lets go, instead of stopping."""
    if not enabled or fcntl is None:
        yield
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise write_fault(e, f"{run_dir}: cannot write the run folder", "choose another --output") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.read(descriptor, 200).decode(errors="replace").strip() or "a process"
        os.close(descriptor)
        raise StellarError(f"{run_dir}: another run is writing to this folder ({owner}); wait for it to end "
                           "(or stop it), or choose another --output") from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}"
             .encode())
    try:
        yield
    finally:
        os.close(descriptor)  # closing releases the lock
