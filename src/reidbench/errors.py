"""The one exception type that means "the user gave us something wrong".

The CLI turns it into a single line on stderr and exit code 2; anything else is
an internal error (exit 1). Messages say what is wrong, where, and what to do.
"""

from __future__ import annotations

import errno


class UserError(Exception):
    """Bad path, bad config or bad data: shown as one line, exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# errno -> what to do. Only conditions the user can fix; anything else stays an internal error.
_OS_ADVICE = {
    errno.ENOSPC: "no space left on the device; free some space (or write elsewhere with "
    "--out) and run the same command again to resume",
    errno.EDQUOT: "disk quota exceeded; free some space and run the same command again",
    errno.EROFS: "read-only file system; choose a writable folder (e.g. --out DIR)",
    errno.EACCES: "permission denied; choose a folder you can write to (e.g. --out DIR)",
    errno.EPERM: "operation not permitted; choose a folder you can write to (e.g. --out DIR)",
    errno.EEXIST: "already exists as a file; pass another path",
    errno.EISDIR: "is a folder; pass a file path",
    errno.ENOTDIR: "a part of this path is a file, not a folder; fix the path",
    errno.ENAMETOOLONG: "file name too long; use a shorter name",
}


def os_user_error(exc: OSError) -> UserError | None:
    """The user error for an OS error the user can fix (disk full, read-only, ...), or None.

    Why one mapping here: such errors can surface from any write in any stage (an atomic
    rename, a SQLite commit, a Parquet write); the CLI turns them into one line naming the
    file and the fix, instead of a traceback.
    """
    advice = _OS_ADVICE.get(exc.errno or -1)
    if advice is None:
        return None
    where = exc.filename if exc.filename is not None else "(file)"
    return UserError(f"{where}: {advice}")
