"""Building blocks for hand-made run directories in tests (pairs and score rows).

Tests of metrics, report and fusion write small run directories whose every
situation is chosen; these helpers keep their tables in the one shape the
product writes (`tables.PAIRS_SCHEMA`, `tables.SCORES_SCHEMA`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from reidbench.tables import PAIRS_SCHEMA

ROW_DEFAULTS: dict[str, Any] = {
    "score": None,
    "decision": "unknown",
    "status": "ok",
    "latency_s": None,
    "tokens_in": 0,
    "tokens_out": 0,
    "cost_usd": 0.0,
    "raw": "",
    "order": "ab",
    "repeat": 0,
    "reasons": None,
    "error": None,
    "cached": False,
    "attempts": 0,
}


def score_row(pair_id: int, system: str, **fields: Any) -> dict[str, Any]:
    """One `scores.parquet` row: the defaults above, overridden by `fields`."""
    return {"pair_id": int(pair_id), "system": system, **ROW_DEFAULTS, **fields}


def labelled_pairs(
    labels: np.ndarray,
    ids: np.ndarray,
    *,
    path_a: list[str] | None = None,
    path_b: list[str] | None = None,
    cams: tuple[int, int] = (1, 2),
) -> pa.Table:
    """A pairs table: pair i is the same person when labels[i] == 1 (Market-style names)."""
    n = labels.size
    path_a = path_a or [f"query/{i:04d}_c1s1_000001_00.jpg" for i in range(n)]
    path_b = path_b or [f"bounding_box_test/{i:04d}_c2s1_000001_00.jpg" for i in range(n)]
    return pa.table(
        {
            "pair_id": np.asarray(ids, dtype=np.int64),
            "path_a": path_a,
            "path_b": path_b,
            "pid_a": np.arange(n),
            "pid_b": np.where(labels == 1, np.arange(n), np.arange(n) + 5000),
            "cam_a": np.full(n, cams[0], np.int64),
            "cam_b": np.full(n, cams[1], np.int64),
            "label": labels.astype(np.int8),
        },
        schema=PAIRS_SCHEMA,
    )


def brute_threshold(y: np.ndarray, s: np.ndarray) -> float | None:
    """Max-accuracy threshold by a plain loop over the distinct scores (ties: fewest accepts),
    placed midway to the next lower distinct score: the reference for the product's rule."""
    if y.size == 0 or y.min() == y.max():
        return None
    cands = sorted(set(s.tolist()), reverse=True)
    best, best_acc = 0, -1.0
    for k, c in enumerate(cands):
        acc = float(np.mean((s >= c) == (y == 1)))
        if acc > best_acc + 1e-12:
            best, best_acc = k, acc
    return cands[best] if best + 1 == len(cands) else (cands[best] + cands[best + 1]) / 2.0


def crossfit_reference(
    y: np.ndarray, s: np.ndarray, answered: np.ndarray, half: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """Decisions of 2-fold cross-fitting (half 0 = A, 1 = B, -1 = across), by brute force."""
    fin = answered & np.isfinite(s)
    ta = brute_threshold(y[fin & (half == 0)], s[fin & (half == 0)])
    tb = brute_threshold(y[fin & (half == 1)], s[fin & (half == 1)])
    thr = np.where(half == 0, tb, np.where(half == 1, ta, (ta + tb) / 2.0))
    return s >= thr, ta, tb
