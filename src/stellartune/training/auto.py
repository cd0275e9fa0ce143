"""What the `auto` settings settle on, decided from the model and the data, each with its reason: the
log prints them, and the run's config.yaml keeps what was settled."""

from __future__ import annotations

import dataclasses

from ..config import TrainConfig
from ..models.sentence_config import sentence_pooling

STANDARD_HEAD = ("the saved model is a standard transformers checkpoint "
                 "(transformers.pipeline loads it)")


def settle_pooling(config: TrainConfig, task, model_path: str) -> tuple[TrainConfig, str]:
    """--pooling auto: the pooling a sentence-transformers checkpoint was trained with (its pooler, if
    it has one, never was), else the architecture's own head."""
    if config.pooling != "auto":
        return config, f"head: {config.pooling} pooling, as --pooling says"
    if not task.one_output_per_text:
        return dataclasses.replace(config, pooling="model"), f"head: {task.head_description}"
    if config.peft in ("prompt", "prefix"):
        return dataclasses.replace(config, pooling="model"), (
            f"head: the architecture's own, which --peft {config.peft} needs; {STANDARD_HEAD}")
    pooling, source = sentence_pooling(model_path)
    if pooling is None:
        return dataclasses.replace(config, pooling="model"), f"head: the architecture's own ({source}); {STANDARD_HEAD}"
    return dataclasses.replace(config, pooling=pooling), (
        f"head: {pooling} pooling, as the checkpoint's {source} says (a sentence-transformers checkpoint, trained "
        f"to pool this way); the saved model loads with stellartune (load, predict, serve, export), not "
        f"transformers.pipeline, which has no head that pools so: --pooling model keeps the architecture's own head")
