"""Reading labeled data: files and datasets -> `Table` -> validated `Examples`.

Plain tables and their columns (examples.py), word-tagged data (token_examples.py, conll.py,
tag_schemes.py) and questions with contexts (qa_examples.py); which reader a task uses is the
task's own choice (tasks/).
"""

from .examples import Columns, Examples, build_examples, resolve_columns, split_examples
from .readers import Table, read_table

__all__ = ["Columns", "Examples", "Table", "build_examples", "read_table", "resolve_columns", "split_examples"]
