"""The one exception type a user sees: the CLI prints its message on one line and exits 2."""


class StellarError(Exception):
    """A problem the user can act on (bad input, unknown model, missing package).

    The message names what is wrong and where (file, row, column) and, when there is one,
    the fix. Anything else that escapes is a bug in stellartune and keeps its traceback.
    """



def some(items, limit: int = 6) -> str:
    """'a, b, c and 12 more': a list of names short enough for a one-line message."""
    items = [str(item) for item in items]
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
