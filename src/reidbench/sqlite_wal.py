"""The SQLite set-up both caches share: a WAL-mode connection that survives a SIGKILL with
only whole transactions, and `IN (...)` look-ups in chunks under SQLite's variable limit.

Hand-written because the standard library's sqlite3 has neither: the WAL switch must
poll (see `open_wal`) and the chunking is three lines.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

CHUNK = 500  # parameters per IN (...) query; SQLite's default limit is 32766


def open_wal(
    path: str | Path,
    *,
    timeout_s: float = 30.0,
    autocommit: bool = False,
    check_same_thread: bool = True,
    wal_wait_s: float = 30.0,
) -> sqlite3.Connection:
    """A connection in WAL mode with synchronous=NORMAL and a busy timeout.

    Changing the journal mode needs an exclusive lock, and SQLite may answer SQLITE_BUSY
    at once instead of calling the busy handler, so two processes opening a new file
    together would otherwise fail: the switch is retried until `wal_wait_s`.
    `autocommit`: every statement outside an explicit transaction commits at once.
    """
    db = sqlite3.connect(
        path,
        timeout=timeout_s,
        isolation_level=None if autocommit else "DEFERRED",  # DEFERRED = sqlite3's default
        check_same_thread=check_same_thread,
    )
    deadline = time.monotonic() + wal_wait_s
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.02)
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
    return db


def select_in(
    db: sqlite3.Connection, sql: str, keys: Sequence[Any], *params: Any
) -> Iterator[tuple[Any, ...]]:
    """Rows of `sql` (which holds one `{marks}` placeholder for the IN list, after `params`)
    for every key, CHUNK keys per query."""
    for start in range(0, len(keys), CHUNK):
        chunk = list(keys[start : start + CHUNK])
        marks = ",".join("?" * len(chunk))
        yield from db.execute(sql.format(marks=marks), [*params, *chunk])
