"""What the `auto` settings settle on, decided from the model and the data, each with its reason: the
log prints them, and the run's config.yaml keeps what was settled."""

from __future__ import annotations

import dataclasses

from ..config import TrainConfig
from ..data.examples import distinct_labels
from ..errors import StellarError
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
    if config.few_shot == "on" and sentence_pooling(model_path)[0] is None:
        return dataclasses.replace(config, pooling="mean"), (
            "head: mean pooling, which the few-shot stage trains and fits its head on (as SetFit does); the saved "
            "model loads with stellartune (load, predict, serve, export) and with transformers.pipeline(..., "
            "trust_remote_code=True)")
    if config.peft in ("prompt", "prefix") or config.merge:
        need = "--merge makes" if config.merge else f"--peft {config.peft} needs"
        return dataclasses.replace(config, pooling="model"), f"head: the architecture's own, which {need}; {STANDARD_HEAD}"
    pooling, source = sentence_pooling(model_path)
    if pooling is None:
        return dataclasses.replace(config, pooling="model"), f"head: the architecture's own ({source}); {STANDARD_HEAD}"
    return dataclasses.replace(config, pooling=pooling), (
        f"head: {pooling} pooling, as the checkpoint's {source} says (a sentence-transformers checkpoint, trained "
        f"to pool this way); the saved model loads with stellartune (load, predict, serve, export) and with "
        f"transformers.pipeline(..., trust_remote_code=True), which runs the head's code saved with it; --pooling "
        f"model keeps the architecture's own head, a standard checkpoint")


# Under both, --few-shot auto trains with the few-shot stage (training/few_shot.py). Measured: the stage beats
# the loop by 10 to 25 points at 8 per class (benchmarks/few_shot.py), and loses to it on 2,000 BANKING77 rows
# (26 per class: 0.808 and 0.788 against 0.829 +- 0.009, benchmarks/zero_config.py), where the loop's
# defaults were measured from
FEW_SHOT_PER_CLASS = 100
FEW_SHOT_EXAMPLES = 2000


def settle_few_shot(config: TrainConfig, task_class, train) -> tuple[TrainConfig, str]:
    """--few-shot auto: on for a task that has the stage, with few examples per class, unless a flag asks for
    another head or strategy, or for the loop. `train`: the training examples, before any is held out."""
    if not task_class.few_shot:
        if config.few_shot == "on":
            raise StellarError(f"--few-shot on: --task {task_class.name} has no few-shot stage (single-label "
                               "classification has)")
        return dataclasses.replace(config, few_shot="off"), ""
    classes = {name for label in distinct_labels(train.labels) for name in task_class.label_names(label)}
    per_class = len(train) / max(1, len(classes))
    unused = config.loop_settings_given()
    if config.few_shot != "auto":
        return config, (f"few-shot: {config.few_shot}, as --few-shot says ({per_class:.0f} training examples per "
                        "class)" + (f"; the stage replaces the loop, so {', '.join(unused)} do(es) not apply"
                                    if unused and config.few_shot == "on" else ""))
    if per_class >= FEW_SHOT_PER_CLASS or len(train) >= FEW_SHOT_EXAMPLES:
        return dataclasses.replace(config, few_shot="off"), ""
    if config.few_shot_conflicts() or unused:
        asked = " and ".join(config.few_shot_conflicts() or unused)
        wanted = "another head or strategy" if config.few_shot_conflicts() else "the training loop"
        return dataclasses.replace(config, few_shot="off"), (
            f"few-shot: off ({per_class:.0f} training examples per class), as {asked} asks for {wanted}")
    return dataclasses.replace(config, few_shot="on"), (
        f"few-shot: on ({per_class:.0f} training examples per class, under {FEW_SHOT_PER_CLASS}, and {len(train)} in all, "
        f"under {FEW_SHOT_EXAMPLES:,}): a contrastive stage "
        "trains the encoder on pairs of the examples, then a logistic regression on its sentence vectors becomes "
        "the head (SetFit's method; --few-shot off: the standard loop only)")


# Learning rate of a sentence classifier by encoder size (parameters): small encoders take larger steps.
# Measured for the small size (minilm, 22.7M; benchmarks/zero_config.py); the larger sizes keep the
# published recipes' rates (BERT/RoBERTa base 2e-5..5e-5, large 1e-5..2e-5).
LR_BY_SIZE = ((60e6, 1e-4), (200e6, 5e-5), (float("inf"), 2e-5))
BATCH_SIZES = (32, 16, 8)
# optimizer steps a run should take: small data trains in smaller batches rather than few steps. Measured
# (benchmarks/zero_config.py): batch 8 is best up to about 6,000 examples x epochs, 16 as good or better
# (and faster) from about 11,000
MIN_STEPS = 500


def auto_lr(parameters: int, task) -> float:
    return next(lr for limit, lr in LR_BY_SIZE if parameters < limit) * task.lr_scale


def auto_batch_size(examples: int, epochs: float) -> int:
    """The largest batch that still gives MIN_STEPS optimizer steps (the smallest when none does)."""
    return next((size for size in BATCH_SIZES if epochs * -(-examples // size) >= MIN_STEPS), BATCH_SIZES[-1])


# The few-shot stage's (training/few_shot.py): SetFit's 2e-5. Measured (benchmarks/few_shot.py, minilm, 5 seeds
# at 8 and 16 per class on SST-2, MRPC and SMS spam): 5e-5 has as high a mean but fell 4 to 8 points under
# 2e-5 on some samples (the lowest seed: 0.585 against 0.661 on SST-2 at 16 per class); 3e-5 the same
FEW_SHOT_LR = 2e-5
FEW_SHOT_BATCH_SIZE = 16


def optimisation_settings(config: TrainConfig, task, parameters: int, examples: int) -> tuple[TrainConfig, str]:
    """--lr and --batch-size when not given: from the encoder's size and the task, and from the number of
    training examples (windows, for QA) and epochs; the few-shot stage's own."""
    if config.few_shot == "on":
        settled = dataclasses.replace(config, lr=config.lr or FEW_SHOT_LR,
                                      batch_size=config.batch_size or FEW_SHOT_BATCH_SIZE)
        return settled, (f"few-shot stage: batch size {settled.batch_size}, learning rate {settled.lr:g}"
                         + (" (auto)" if settled.lr != config.lr or settled.batch_size != config.batch_size else ""))
    reasons = []
    if config.batch_size is None:
        size = auto_batch_size(examples, config.epochs)
        config = dataclasses.replace(config, batch_size=size)
        reasons.append(f"batch size {size} ({examples} training examples x {config.epochs:g} epoch{'' if config.epochs == 1 else 's'}: the largest of "
                       f"{'/'.join(map(str, BATCH_SIZES))} that gives {MIN_STEPS} steps or more)")
    if config.lr is None:
        lr = auto_lr(parameters, task)
        config = dataclasses.replace(config, lr=lr)
        reasons.append(f"learning rate {lr:g} (a {parameters / 1e6:.0f}M-parameter encoder"
                       + (f", x{task.lr_scale:g} for a {task.name} head" if task.lr_scale != 1 else "") + ")")
    return config, ("auto: " + "; ".join(reasons)) if reasons else ""
