"""Paired comparisons of two systems on identical pairs (McNemar, paired AUC bootstrap)."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from reidbench.metrics.run.abstain import coverage_aware_compare
from reidbench.metrics.run.blocks import pair_ids_digest
from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.metrics.run.thresholds import Decided


def compare(
    a: Decided,
    b: Decided,
    y: np.ndarray,
    boot: Bootstrap,
    ids: np.ndarray,
    *,
    within: np.ndarray | None = None,
) -> dict:
    """McNemar on pairs both answered, AUC difference on pairs both scored (identical pair
    ids for both systems, optionally `within` a subset); each test names its pairs' digest."""
    entry: dict[str, Any] = {"a": a.name, "b": b.name, "null_reasons": {}}
    both = a.answered & b.answered
    if within is not None:
        both = both & within
    if a.pred is None or b.pred is None:
        entry["mcnemar"] = None
        entry["null_reasons"]["mcnemar"] = "a system has no decision threshold"
    else:
        entry["mcnemar"] = boot.mcnemar(
            a.pred[both] == (y[both] == 1), b.pred[both] == (y[both] == 1), at=both
        )
        entry["mcnemar"]["pair_ids_sha256"] = pair_ids_digest(ids[both])
    scored = both & np.isfinite(a.score) & np.isfinite(b.score)
    entry["auc_diff"] = boot.auc_diff(y[scored], a.score[scored], b.score[scored], at=scored)
    entry["auc_diff"]["pair_ids_sha256"] = pair_ids_digest(ids[scored])
    entry["coverage_aware"] = coverage_aware_compare(a, b, y, boot, ids, within=within)
    return entry


def comparisons(
    views: list[Decided], y: np.ndarray, boot: Bootstrap, ids: np.ndarray
) -> list[dict[str, Any]]:
    return [compare(a, b, y, boot, ids) for a, b in combinations(views, 2)]
