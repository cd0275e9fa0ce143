"""Tasks: each knows its labels, encoding, loss, metrics and predictions (see base.Task)."""

from .base import Encoded, Task
from .classification import ClassificationTask

TASKS = {"classification": ClassificationTask}


def task_from_dict(data: dict) -> Task:
    """Rebuild the task saved with a model (`stellartune.json`)."""
    return TASKS[data["task"]].from_dict(data)


__all__ = ["Encoded", "Task", "ClassificationTask", "TASKS", "task_from_dict"]
