"""User-facing errors.

Every problem caused by the user's input (a missing file, a corrupt model, a bad
``--input-shape``) is raised as :class:`ArchlintError`; the CLI prints its message
on one line and exits with code 2. Anything else is a bug in archlint.
"""


class ArchlintError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""

    exit_code = 2


def first_line(exc: BaseException | str, limit: int = 300) -> str:
    """The first non-empty line of an exception's message (its type name when it has none),
    cut to ``limit`` characters: what a one-line error shows of a library's failure."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__ if isinstance(exc, BaseException) else "unknown error"
    return text.splitlines()[0][:limit]
