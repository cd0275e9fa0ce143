"""transformers' own reports and progress bars kept out of stellartune's output."""

from __future__ import annotations

import contextlib

import transformers


@contextlib.contextmanager
def quiet_transformers():
    """Hide transformers' load reports and progress bars ("newly initialized: classifier..."):
    stellartune logs one line of its own instead."""
    level, bars = transformers.logging.get_verbosity(), transformers.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)
        if bars:
            transformers.logging.enable_progress_bar()
