"""User-facing errors.

Every problem caused by the user's input (a missing file, a corrupt model, a bad
``--input-shape``) is raised as :class:`ArchlintError`; the CLI prints its message
on one line and exits with code 2. Anything else is a bug in archlint.
"""


class ArchlintError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""

    exit_code = 2
