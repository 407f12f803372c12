"""Feature-cache writes in a background thread, so the model does not wait on SQLite.

Rows are collected into transactions of `rows` rows and written one
transaction at a time, in order, by a single thread (sqlite3 releases the GIL
while it works, so the model and the decoders keep running). A write error
surfaces at the next `add` or at `close`. `close` writes what is left, so a
run that stops early still stores everything it computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from reidbench.models.feature_cache import FeatureCache


class BackgroundWriter:
    def __init__(
        self,
        cache: FeatureCache,
        fingerprint: str,
        description: Mapping[str, Any],
        rows: int,
    ) -> None:
        self.cache = cache
        self.fingerprint = fingerprint
        self.description = description
        self.rows = rows
        self.pending: dict[str, np.ndarray] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="reidbench-cache")
        self._last: Future[None] | None = None

    def add(self, rows: Mapping[str, np.ndarray]) -> None:
        self.pending.update(rows)
        if len(self.pending) >= self.rows:
            self._submit()

    def _submit(self) -> None:
        self._wait()  # one transaction at a time, in order; errors surface here
        batch, self.pending = self.pending, {}
        self._last = self._pool.submit(
            self.cache.put_many, self.fingerprint, batch, self.description
        )

    def _wait(self) -> None:
        if self._last is not None:
            last, self._last = self._last, None
            last.result()

    def close(self) -> None:
        """Write what is left and wait for it."""
        try:
            if self.pending:
                self._submit()
            self._wait()
        finally:
            self._pool.shutdown(wait=True)
