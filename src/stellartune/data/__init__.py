"""Reading labeled data: files and datasets -> `Table` -> validated `Examples`.

`columns_for` and `examples_for` pick the path by task: word-tagged (NER) data goes through
token_examples.py, everything else through examples.py.
"""

from .examples import Columns, Examples, build_examples, resolve_columns, split_examples
from .readers import Table, read_table
from .token_examples import build_token_examples, resolve_token_columns


def columns_for(problem: str, table: Table, text=None, pair=None, label=None, need_label=True) -> Columns:
    if problem == "ner":
        return resolve_token_columns(table, text, label, need_label)
    return resolve_columns(table, text, pair, label, need_label)


def examples_for(problem: str, table: Table, columns: Columns, delimiter: str = ",", need_label=True) -> Examples:
    if problem == "ner":
        return build_token_examples(table, columns, need_label)
    return build_examples(table, columns, problem, delimiter, need_label)


__all__ = ["Columns", "Examples", "Table", "build_examples", "columns_for", "examples_for", "read_table",
           "split_examples"]
