"""Tasks: each knows its data, labels, model, loss, metrics and predictions (the contract: base.Task).

Adding a task: write its class in one file (a `Task` subclass with a `name`) and add one line for it under
`[project.entry-points."stellartune.tasks"]` in pyproject.toml (or call `stellartune.register` on it). The
functions below find tasks through that registry; none of them names one.
"""

from __future__ import annotations

from ..data.examples import label_kind_of
from ..data.readers import Table
from ..errors import StellarError
from ..task_registry import register, task_class, task_classes, task_names
from .base import Task


def detect_task(source, tag_column: int = -1) -> tuple[type[Task] | None, Table, str]:
    """--task auto, from the data alone: the task whose file format (CoNLL) or table shape (token lists,
    questions with contexts) it is, with its first rows read as that task reads them; None when only the labels
    can tell (`task_from_labels`, once the label column is known)."""
    classes = task_classes()
    claimed = next((cls for cls in classes if cls.claims_file(source, tag_column)), None)
    if claimed is not None:
        return claimed, claimed.first_rows(source, tag_column), "as the file's format shows"
    table = Task.first_rows(source)
    recognised = next((cls for cls in classes if cls.recognises(table)), None)
    if recognised is not None:
        return recognised, recognised.adopt(table), "as the data's columns show"
    return None, table, ""


def task_from_labels(table: Table, label_column: str, delimiter: str) -> tuple[type[Task], str]:
    """The task whose label cells look like this column's (one class, several, a number), and why."""
    kind, why = label_kind_of(table, label_column, delimiter)
    found = next((cls for cls in task_classes() if cls.label_kind == kind), None)
    if found is None:
        raise StellarError(f"{table.source}, column {label_column!r}: no task takes labels like these ({why}); "
                           f"name one with --task ({', '.join(task_names())})")
    return found, why


def check_options(config, chosen: type[Task], say) -> None:
    """A setting that only other tasks read, given for this one, is said in the log (not an error: a saved
    config.yaml of any run holds every setting)."""
    for option in sorted({o for cls in task_classes() for o in cls.options} - set(chosen.options)):
        value, default = getattr(config, option), type(config).__dataclass_fields__[option].default
        if value != default:
            owners = [cls.name for cls in task_classes() if option in cls.options]
            say(f"--{option.replace('_', '-')} {value} is a setting of --task {' and '.join(owners)}: this run "
                f"(--task {chosen.name}) does not use it")


def task_from_dict(data: dict) -> Task:
    """Rebuild the task saved with a model (`stellartune.json`). Folders saved before the classification
    tasks had their own names keep the name of the one they are in "problem"."""
    name = data["task"] if data.get("problem") in (None, "classification", data["task"]) else data["problem"]
    return task_class(name).from_dict(data)


__all__ = ["Task", "check_options", "detect_task", "register", "task_class", "task_from_dict", "task_from_labels", "task_names"]
