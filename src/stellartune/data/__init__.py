"""Reading labeled data: files and datasets -> `Table` -> validated `Examples`."""

from .readers import Table, read_table
from .examples import Examples, build_examples, split_examples

__all__ = ["Table", "read_table", "Examples", "build_examples", "split_examples"]
