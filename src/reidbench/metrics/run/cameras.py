"""Accuracy per camera pair (issue #15): which camera combinations each system finds hard.

Cells are unordered camera pairs from `pairs.parquet`'s cam_a / cam_b; a cell's value is
the headline accuracy (abstentions as coin flips, `coverage.expected_correct`) over the
pairs of that cell the system was meant to answer. Cells with fewer than MIN_N pairs are
flagged: their accuracy is too noisy to read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from reidbench.metrics._util import fnum
from reidbench.metrics.coverage import expected_correct
from reidbench.metrics.run.thresholds import Decided
from reidbench.rundir import Pairs
from reidbench.tables import PAIRS_SCHEMA, read_table

MIN_N = 20
RULE = (
    "unordered camera pairs (cam_a, cam_b) of pairs.parquet; accuracy over the pairs the "
    "system was meant to answer at its cross-fitted threshold, an abstention a coin flip "
    f"(0.5 correct); cells with fewer than {MIN_N} pairs are marked small"
)


def read_cameras(run_path: Path, pairs: Pairs) -> tuple[np.ndarray, np.ndarray] | None:
    """(cam_a, cam_b) aligned with `pairs`, or None when the pair set has no camera ids."""
    table = read_table(run_path / "pairs.parquet", schema=PAIRS_SCHEMA)
    if table.column("cam_a").null_count or table.column("cam_b").null_count:
        return None
    ids = np.asarray(table.column("pair_id").to_numpy(), dtype=np.int64)
    rows = pairs.rows_of(ids, "pairs.parquet")
    cam_a = np.empty(pairs.n, np.int64)
    cam_b = np.empty(pairs.n, np.int64)
    cam_a[rows] = np.asarray(table.column("cam_a").to_numpy(), dtype=np.int64)
    cam_b[rows] = np.asarray(table.column("cam_b").to_numpy(), dtype=np.int64)
    return cam_a, cam_b


def camera_cells(
    cam_a: np.ndarray, cam_b: np.ndarray, values: np.ndarray, keep: np.ndarray
) -> list[dict[str, Any]]:
    """[{cams: [lo, hi], n, accuracy}] per unordered camera pair among the kept pairs."""
    lo, hi = np.minimum(cam_a, cam_b)[keep], np.maximum(cam_a, cam_b)[keep]
    v = np.asarray(values, dtype=np.float64)[keep]
    out = []
    for a, b in sorted({(int(x), int(z)) for x, z in zip(lo, hi, strict=True)}):
        sel = (lo == a) & (hi == b)
        out.append({"cams": [a, b], "n": int(sel.sum()), "accuracy": fnum(v[sel].mean())})
    return out


def camera_accuracy(
    views: list[Decided], pairs: Pairs, cams: tuple[np.ndarray, np.ndarray] | None
) -> dict[str, Any] | None:
    if cams is None:
        return None
    cam_a, cam_b = cams
    y = pairs.label
    systems: dict[str, Any] = {}
    for d in views:
        if d.pred is None or d.score.size != pairs.n:
            continue
        keep = d.status != "not_evaluated"
        systems[d.name] = camera_cells(cam_a, cam_b, expected_correct(y, d.pred, d.answered), keep)
    cameras = sorted({int(c) for c in np.concatenate([cam_a, cam_b])})
    return {"cameras": cameras, "min_n": MIN_N, "rule": RULE, "systems": systems}
