"""The search space: centred on what `auto` picks for this model and data, changed by `--space FILE.yaml`, with
the settings given as flags held fixed. Optuna's distributions hold it; `Space.suggest` asks a trial for values."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from ..config import TrainConfig, coerce, load_yaml
from ..errors import StellarError
from ..training.auto import auto_batch_size, auto_lr

# What a trial may not change: the data, how it is read and tokenized (read once for every trial), the run folder
FIXED_BY_DATA = ("model", "train", "eval", "calibration", "output", "task", "text_column", "text_pair_column",
                 "label_column", "label_delimiter", "tag_column", "subword_labels", "eval_split", "calibration_split",
                 "max_length", "long_texts", "doc_stride", "template", "verbalizer", "few_shot", "resume",
                 "overwrite", "progress", "report_to", "trust_remote_code")


@dataclass
class Space:
    distributions: dict[str, BaseDistribution]
    fixed: dict[str, object]  # given as flags or in --space: every trial gets them
    centre: dict[str, object]  # what the no-flag defaults would pick: the first trial

    def suggest(self, trial) -> dict:
        """A trial's settings: the sampler's values, with the fixed ones."""
        return {**self.fixed, **{name: suggest(trial, name, d) for name, d in self.distributions.items()}}

    def centre_inside(self) -> bool:
        """Whether the defaults are a point of the space (a --space file may leave them out)."""
        return all(name in self.centre and contains(d, self.centre[name]) for name, d in self.distributions.items())

    def describe(self) -> str:
        searched = ", ".join(f"{name} {describe_distribution(d)}" for name, d in self.distributions.items())
        fixed = ", ".join(f"{name} {value}" for name, value in self.fixed.items())
        return f"searching {searched}" + (f"; fixed: {fixed}" if fixed else "")


def suggest(trial, name: str, d: BaseDistribution):
    if isinstance(d, CategoricalDistribution):
        return trial.suggest_categorical(name, d.choices)
    if isinstance(d, IntDistribution):
        return trial.suggest_int(name, d.low, d.high, log=d.log)
    return trial.suggest_float(name, d.low, d.high, log=d.log)


def contains(d: BaseDistribution, value) -> bool:
    return value in d.choices if isinstance(d, CategoricalDistribution) else d.low <= value <= d.high


def describe_distribution(d: BaseDistribution) -> str:
    if isinstance(d, CategoricalDistribution):
        return "|".join(map(str, d.choices))
    return f"{d.low:g}..{d.high:g}" + (" (log)" if d.log else "")


def auto_space(config: TrainConfig, task, parameters: int, examples: int, own_dropout: float | None) -> Space:
    """Around the no-flag defaults for this model and data: the learning rate from a quarter to four times auto's,
    half to twice auto's batch size, two epochs fewer to two more, and the regularisers' usual ranges."""
    lr, epochs = auto_lr(parameters, task), round(config.epochs)
    batch = auto_batch_size(examples, config.epochs)
    centre = {"lr": lr, "batch_size": batch, "epochs": epochs, "warmup_ratio": 0.1, "weight_decay": 0.01,
              "dropout": 0.1 if own_dropout is None else own_dropout, "layer_lr_decay": 1.0, "reinit_layers": 0}
    distributions = {
        "lr": FloatDistribution(lr / 4, lr * 4, log=True),
        "batch_size": CategoricalDistribution(sorted({max(4, batch // 2), batch, batch * 2})),
        "epochs": IntDistribution(max(1, epochs - 2), epochs + 2),
        "warmup_ratio": FloatDistribution(0.0, 0.2),
        "weight_decay": FloatDistribution(0.0, 0.1),
        "dropout": FloatDistribution(0.0, max(0.2, centre["dropout"])),
        "layer_lr_decay": FloatDistribution(0.7, 1.0),
        "reinit_layers": IntDistribution(0, 2),
    }
    given = {name: getattr(config, name) for name in distributions if is_given(config, name)}
    return Space({k: v for k, v in distributions.items() if k not in given}, given,
                 {k: v for k, v in centre.items() if k not in given})


def is_given(config: TrainConfig, name: str) -> bool:
    return getattr(config, name) != TrainConfig.__dataclass_fields__[name].default


def read_space_file(path: str) -> dict:
    """`--space`'s entries, checked before any work: each a distribution, a fixed value, or None (not searched)."""
    entries = {}
    for name, entry in load_yaml(path).items():
        if name not in TrainConfig.__dataclass_fields__:
            raise StellarError(f"{path}: {name}: not a setting of train")
        if name in FIXED_BY_DATA:
            raise StellarError(f"{path}: {name}: fixed for the whole search (the data is read and tokenized once); "
                               "give it as a flag instead")
        try:
            if isinstance(entry, dict):
                entries[name] = range_of(name, entry)
            elif isinstance(entry, list):
                entries[name] = CategoricalDistribution([coerce(TrainConfig, name, v) for v in entry])
            else:
                entries[name] = None if entry is None else Fixed(coerce(TrainConfig, name, entry))
        except (StellarError, ValueError, TypeError) as e:
            raise StellarError(f"{path}: {name}: {e}") from None
    return entries


@dataclass(frozen=True)
class Fixed:
    value: object


def with_entries(space: Space, entries: dict) -> Space:
    """The space with a --space file's entries over it."""
    distributions = {k: v for k, v in space.distributions.items() if k not in entries}
    fixed = {k: v for k, v in space.fixed.items() if k not in entries}
    for name, entry in entries.items():
        if isinstance(entry, Fixed):
            fixed[name] = entry.value
        elif entry is not None:
            distributions[name] = entry
    return dataclasses.replace(space, distributions=distributions, fixed=fixed)


def range_of(name: str, entry: dict) -> BaseDistribution:
    unknown = set(entry) - {"low", "high", "log"}
    if unknown or not {"low", "high"} <= set(entry):
        raise ValueError(f"a range takes low, high and optionally log (true/false); got {', '.join(map(str, entry))}")
    low, high, log = entry["low"], entry["high"], bool(entry.get("log", False))
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):  # 1..5: whole numbers
        return IntDistribution(int(coerce(TrainConfig, name, low)), int(coerce(TrainConfig, name, high)), log=log)
    return FloatDistribution(float(coerce(TrainConfig, name, low)), float(coerce(TrainConfig, name, high)), log=log)
