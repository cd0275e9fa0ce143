"""The one exception type a user sees: the CLI prints its message on one line and exits 2."""


class StellarError(Exception):
    """A problem the user can act on (bad input, unknown model, missing package).

    The message names what is wrong and where (file, row, column) and, when there is one,
    the fix. Anything else that escapes is a bug in stellartune and keeps its traceback.
    """

