"""Tasks: each knows its labels, encoding, loss, metrics and predictions (see base.Task)."""

from .base import Encoded, Task
from .classification import ClassificationTask
from .cloze import ClozeTask
from .question_answering import QuestionAnsweringTask
from .token_classification import TokenClassificationTask

TASKS = {"classification": ClassificationTask, "ner": TokenClassificationTask, "qa": QuestionAnsweringTask,
         "cloze": ClozeTask}


def task_for(problem: str, train, config) -> Task:
    """The task a training run needs, with its labels taken from the training examples."""
    if problem == "ner":
        return TokenClassificationTask.from_examples(train, config.subword_labels)
    if problem == "qa":
        return QuestionAnsweringTask.from_examples(train, config)
    if problem == "cloze":
        return ClozeTask.from_examples(train, config.template, config.verbalizer)
    return ClassificationTask.from_examples(problem, train, config.class_weights)


def task_from_dict(data: dict) -> Task:
    """Rebuild the task saved with a model (`stellartune.json`)."""
    return TASKS[data["task"]].from_dict(data)


__all__ = ["Encoded", "Task", "ClassificationTask", "TokenClassificationTask", "QuestionAnsweringTask", "ClozeTask", "TASKS", "task_for", "task_from_dict"]
