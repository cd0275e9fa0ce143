"""Tasks: each knows its data, labels, model, loss, metrics and predictions (see base.Task).

Adding a task: write its class (tasks/your_task.py, a `Task` subclass) and add it to `PROBLEMS`
under the `--task` name(s) it answers to; nothing outside this package names a task.
"""

from .base import Task
from .classification import ClassificationTask
from .cloze import ClozeTask
from .question_answering import QuestionAnsweringTask
from .token_classification import TokenClassificationTask

# --task values (and what auto settles on) -> the class that handles them
PROBLEMS: dict[str, type[Task]] = {"classification": ClassificationTask, "multi-label": ClassificationTask,
                                   "regression": ClassificationTask, "ner": TokenClassificationTask,
                                   "qa": QuestionAnsweringTask, "cloze": ClozeTask}
TASKS = {cls.name: cls for cls in PROBLEMS.values()}  # the name saved with a model -> its class


def task_class(problem: str | None) -> type[Task]:
    """The class for a --task value; None: a classification task whose kind its labels will tell."""
    return PROBLEMS[problem or "classification"]


def read_for(problem: str, source, tag_column: int = -1):
    """The table of `source` for a task; `auto`: CoNLL files and nested SQuAD files are read as such."""
    if problem != "auto":
        return task_class(problem).read(source, tag_column)
    table = TokenClassificationTask.read(source, tag_column)  # a CoNLL file, or any table
    return QuestionAnsweringTask.read(source) if "paragraphs" in table.columns else table


def recognised_task(table) -> str | None:
    """The task a table's shape tells (token/tag lists, questions with contexts); None: told by its labels."""
    return next((name for name, cls in PROBLEMS.items() if cls.recognises(table)), None)


def problem_from_labels(table, label_column: str, delimiter: str) -> tuple[str, str]:
    """The classification task a table's label cells tell (single-label, multi-label or regression), and why."""
    return ClassificationTask.problem_from_labels(table, label_column, delimiter)


def columns_for(problem: str | None, table, text=None, pair=None, label=None, need_label: bool = True):
    return task_class(problem).find_columns(table, text, pair, label, need_label)


def examples_for(problem: str, table, columns, delimiter: str = ",", need_label: bool = True):
    return task_class(problem).build_examples(problem, table, columns, delimiter, need_label)


def task_for(problem: str, train, config) -> Task:
    """The task a training run needs, with its labels taken from the training examples."""
    return task_class(problem).from_examples(problem, train, config)


def task_from_dict(data: dict) -> Task:
    """Rebuild the task saved with a model (`stellartune.json`)."""
    return TASKS[data["task"]].from_dict(data)


__all__ = ["Task", "ClassificationTask", "TokenClassificationTask", "QuestionAnsweringTask", "ClozeTask", "PROBLEMS",
           "TASKS", "columns_for", "examples_for", "problem_from_labels", "read_for", "recognised_task", "task_class", "task_for",
           "task_from_dict"]
