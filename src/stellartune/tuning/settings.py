"""The search's own settings, declared once: defaults, help texts and the CLI flags of `tune` come from here
(the data, model and training flags are `train`'s, from `TrainConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import check_choices_and_counts, setting


@dataclass
class TuneSettings:
    trials: int = setting(20, "Trials the search runs in all: those of every process working on the study, and those "
                              "run before a --resume, count.")
    timeout: float | None = setting(None, "Wall-time budget of this process, in seconds: no trial starts that would "
                                          "likely end past it, judged by the trials so far (none: no limit).")
    space: str | None = setting(None, "YAML file that changes the search space, one setting per line: "
                                      "'lr: {low: 1e-5, high: 1e-3, log: true}', 'epochs: {low: 1, high: 5}', "
                                      "'batch_size: [16, 32]' (choices), 'warmup_ratio: 0.1' (fixed), "
                                      "'dropout: null' (not searched). Any train setting may be searched.")
    storage: str | None = setting(None, "Where the study lives, an Optuna storage URL (SQLAlchemy: sqlite:///..., "
                                        "postgresql://..., mysql://...); none: sqlite:///OUTPUT/study.db. "
                                        "Processes or machines given one URL (and --resume) search together.")
    study_name: str | None = setting(None, "The study's name in --storage (none: the --output folder's name).")

    def __post_init__(self):
        check_choices_and_counts(self, ("trials", "timeout"))
