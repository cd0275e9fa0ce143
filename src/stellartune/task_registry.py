"""The tasks stellartune can train, by the name `--task` takes and a saved model keeps.

Each task is one class in its own module (`stellartune/tasks/`), found here by name: built-in tasks and
tasks of other installed packages through the `stellartune.tasks` entry point group (one line in a
package's pyproject.toml), a task defined in a script or notebook through `register`. Names come from the
package metadata without importing the tasks, so `stellartune --help` still starts instantly; a class
is imported when it is first asked for. Nothing else in stellartune lists tasks.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from .errors import StellarError

GROUP = "stellartune.tasks"
REGISTERED: dict[str, type] = {}  # tasks added at run time with `register`


def register(task_class: type) -> type:
    """Make a task class (a `stellartune.tasks.Task` with a `name`) trainable and loadable under its name;
    usable as a class decorator."""
    REGISTERED[task_class.name] = task_class
    return task_class


@cache
def installed() -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group=GROUP)}


def task_names() -> tuple[str, ...]:
    """Every task's name: installed ones as the package metadata lists them, then the registered ones."""
    return tuple(dict.fromkeys([*installed(), *REGISTERED]))


def task_class(name: str) -> type:
    if name in REGISTERED:
        return REGISTERED[name]
    if name not in installed():
        raise StellarError(f"--task {name}: no such task; the tasks are {', '.join(task_names())}")
    return installed()[name].load()


def task_classes() -> list[type]:
    """Every task class, in `task_names` order (the order `--task auto` tries them in)."""
    return [task_class(name) for name in task_names()]
