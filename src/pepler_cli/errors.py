"""The one exception type the CLI turns into a single clear line and a non-zero exit code."""

from __future__ import annotations


class PeplerError(Exception):
    """A problem the user can fix: bad input, a missing file, an unknown plugin name.

    The message must stand alone on one line and name the file, record and field where they are known.
    ``exit_code`` follows the usual convention: 2 for a usage problem (missing or wrong arguments), 1 for
    everything else.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class UsageError(PeplerError):
    """Wrong or missing arguments: exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)
