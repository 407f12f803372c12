"""The one exception type that means "the user gave us something wrong".

The CLI turns it into a single line on stderr and exit code 2; anything else is
an internal error (exit 1). Messages say what is wrong, where, and what to do.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad path, bad config or bad data: shown as one line, exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
