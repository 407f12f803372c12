"""On-disk feature cache keyed by (embedder fingerprint, image content sha256).

One SQLite file (`<dir>/features.sqlite`, WAL mode) rather than one .npy per
image: a Market-1501 run is ~32k images per embedder, and batched `IN (...)`
look-ups and one transaction per batch of inserts are far faster than 32k
small files. Every insert batch is a transaction, so a killed run leaves the
cache with whole batches only; a resumed run recomputes nothing it stored.
Keys use the image bytes' hash, not the path, so moved or copied datasets
still hit, and an edited image never serves a stale feature.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reidbench.errors import UserError
from reidbench.sqlite_wal import open_wal, select_in


def default_cache_dir() -> Path:
    """`$REIDBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/reidbench`, else `~/.cache/reidbench`."""
    env = os.environ.get("REIDBENCH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "reidbench"


class FeatureCache:
    """Feature rows by (fingerprint, content hash). Use from one thread at a time."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory).expanduser()
        self.path = self.dir / "features.sqlite"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            # One thread at a time, but not always the opening one: extraction hands the
            # connection to its cache-writer thread while the model runs.
            self._db = open_wal(self.path, timeout_s=60.0, check_same_thread=False)
            self._db.executescript(
                """
                CREATE TABLE IF NOT EXISTS features (
                    fingerprint TEXT NOT NULL,
                    content_sha256 TEXT NOT NULL,
                    dim INTEGER NOT NULL,
                    vec BLOB NOT NULL,
                    PRIMARY KEY (fingerprint, content_sha256)
                ) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS embedders (
                    fingerprint TEXT PRIMARY KEY,
                    description TEXT NOT NULL
                );
                """
            )
        except (OSError, sqlite3.Error) as exc:
            raise UserError(
                f"{self.path}: cannot open the feature cache ({exc}); "
                "pass a writable --cache DIR or --no-cache"
            ) from exc

    def get_many(self, fingerprint: str, hashes: Iterable[str], dim: int) -> dict[str, np.ndarray]:
        """Stored rows for the given content hashes (missing or wrong-sized rows are absent)."""
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        rows = select_in(
            self._db,
            "SELECT content_sha256, dim, vec FROM features "
            "WHERE fingerprint = ? AND content_sha256 IN ({marks})",
            wanted,
            fingerprint,
        )
        for digest, row_dim, blob in rows:
            if row_dim == dim and len(blob) == 4 * dim:
                found[digest] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(
        self,
        fingerprint: str,
        rows: Mapping[str, np.ndarray],
        description: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert rows in one transaction (all or nothing)."""
        data = [
            (fingerprint, digest, int(v.shape[-1]), np.ascontiguousarray(v, np.float32).tobytes())
            for digest, v in rows.items()
        ]
        try:
            with self._db:
                if description is not None:
                    self._db.execute(
                        "INSERT OR IGNORE INTO embedders VALUES (?, ?)",
                        (fingerprint, json.dumps(description, sort_keys=True)),
                    )
                self._db.executemany("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?)", data)
        except sqlite3.Error as exc:
            raise UserError(f"{self.path}: cannot write the feature cache ({exc})") from exc

    def count(self, fingerprint: str | None = None) -> int:
        if fingerprint is None:
            return int(self._db.execute("SELECT COUNT(*) FROM features").fetchone()[0])
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM features WHERE fingerprint = ?", (fingerprint,)
            ).fetchone()[0]
        )

    def fingerprints(self) -> Sequence[str]:
        return [r[0] for r in self._db.execute("SELECT fingerprint FROM embedders ORDER BY 1")]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
