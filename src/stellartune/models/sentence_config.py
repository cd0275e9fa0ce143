"""What a sentence-transformers checkpoint says about itself: how it pools token vectors into a sentence
vector (its Pooling module's config), which a new classification head should use to start where the
checkpoint was trained."""

from __future__ import annotations

import json
from pathlib import Path

# sentence-transformers' pooling flags -> stellartune's pooling (max and mean-sqrt-len have no head here)
POOLING_FLAGS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}


def sentence_pooling(model_path: str) -> tuple[str | None, str]:
    """(pooling, the file that says so) for a sentence-transformers checkpoint whose Pooling module uses
    one mode stellartune has; (None, why not) otherwise. Local folders and cached hub ids."""
    modules = read_json(model_path, "modules.json")
    folder = next((m.get("path", "") for m in modules or [] if str(m.get("type", "")).endswith(".Pooling")),
                  "1_Pooling")
    settings = read_json(model_path, f"{folder}/config.json")
    if not settings:
        return None, "no sentence-transformers pooling config"
    modes = [flag for flag, on in settings.items() if flag.startswith("pooling_mode_") and on]
    if len(modes) != 1 or modes[0] not in POOLING_FLAGS:
        return None, f"its sentence-transformers pooling ({', '.join(modes) or 'none'}) has no stellartune head"
    return POOLING_FLAGS[modes[0]], f"{folder}/config.json"


def read_json(model_path: str, filename: str):
    """A JSON file of a local model folder or a hub repo: from the cache when it holds the file or knows
    the file is absent, else from the hub (which caches either answer)."""
    if Path(model_path).is_dir():
        path = Path(model_path) / filename
        return json.loads(path.read_text()) if path.is_file() else None
    from huggingface_hub import try_to_load_from_cache
    from transformers.utils import cached_file

    path = try_to_load_from_cache(model_path, filename)
    if path is None:  # not asked before: ask the hub
        try:
            path = cached_file(model_path, filename, _raise_exceptions_for_missing_entries=False,
                               _raise_exceptions_for_connection_errors=False)
        except OSError:  # gated or unknown repo: no sentence-transformers config to read
            path = None
    return json.loads(Path(path).read_text()) if isinstance(path, str) else None
