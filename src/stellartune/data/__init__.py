"""Reading labeled data: files and datasets -> `Table` -> validated `Examples`.

`read_for`, `columns_for` and `examples_for` pick the path by task: word-tagged (NER) data goes
through token_examples.py, questions with contexts (QA) through qa_examples.py, everything else
through examples.py.
"""

from .examples import Columns, Examples, build_examples, resolve_columns, split_examples
from .qa_examples import build_qa_examples, is_qa_table, read_qa_table, resolve_qa_columns
from .readers import Table, read_table
from .token_examples import build_token_examples, is_token_table, read_token_table, resolve_token_columns


def read_for(problem: str, source, tag_column: int = -1) -> Table:
    """The table of `source` for a task (`auto`: whatever the file turns out to hold)."""
    if problem == "qa":
        return read_qa_table(source)
    if problem in ("auto", "ner"):
        table = read_token_table(source, tag_column)
        return read_qa_table(source) if problem == "auto" and "paragraphs" in table.columns else table
    return read_table(source)


def structured_task(table: Table) -> str | None:
    """ner or qa when the table's shape says so; None: a classification task, told by its labels."""
    return "ner" if is_token_table(table) else "qa" if is_qa_table(table) else None


def columns_for(problem: str, table: Table, text=None, pair=None, label=None, need_label=True) -> Columns:
    if problem == "ner":
        return resolve_token_columns(table, text, label, need_label)
    if problem == "qa":
        return resolve_qa_columns(table, text, pair, label, need_label)
    return resolve_columns(table, text, pair, label, need_label)


def examples_for(problem: str, table: Table, columns: Columns, delimiter: str = ",", need_label=True) -> Examples:
    if problem == "ner":
        return build_token_examples(table, columns, need_label)
    if problem == "qa":
        return build_qa_examples(table, columns, need_label)
    return build_examples(table, columns, problem, delimiter, need_label)


__all__ = ["Columns", "Examples", "Table", "build_examples", "columns_for", "examples_for", "read_for", "read_table",
           "split_examples", "structured_task"]
