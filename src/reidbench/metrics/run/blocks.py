"""The metric block every table of `metrics.json` is made of: threshold metrics over the
decisions, ranking metrics over the scored pairs, and why a value is null."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from reidbench.metrics import specs
from reidbench.metrics import verification as ver

METRIC_NAMES = (*ver.THRESHOLD_METRICS, *ver.RANKING_METRICS)  # the built-in ones


def metric_names() -> tuple[str, ...]:
    """Every headline metric key, registered ones included, in table order."""
    return specs.keys()


def pair_ids_digest(ids: np.ndarray) -> str:
    """sha256 (16 hex) of the sorted pair ids: the same set of pairs gives the same digest."""
    arr = np.sort(np.asarray(ids, dtype=np.int64)).astype("<i8")
    return hashlib.sha256(arr.tobytes()).hexdigest()[:16]


def block(
    y: np.ndarray,
    s: np.ndarray,
    pred: np.ndarray | None,
    *,
    no_pred_reason: str = "no decision threshold",
) -> dict[str, Any]:
    """Threshold metrics (if decisions exist) and ranking metrics over the scored rows."""
    out: dict[str, Any] = {"n": int(y.size)}
    reasons: dict[str, str] = {}
    if pred is None:
        out.update(dict.fromkeys(ver.THRESHOLD_METRICS))
        reasons.update(dict.fromkeys(ver.THRESHOLD_METRICS, no_pred_reason))
    else:
        tm = ver.threshold_metrics(y, pred)
        reasons.update(tm.pop("null_reasons"))
        tm.pop("n")
        out.update(tm)
    scored = np.isfinite(s)
    rm = ver.ranking_metrics(y[scored], s[scored])
    reasons.update(rm.pop("null_reasons"))
    out.update(rm)
    for spec in specs.METRIC_SPECS:  # metrics registered with their own function
        if spec.compute is None:
            continue
        if spec.kind == "threshold":
            value = None if pred is None else spec.compute(y, np.asarray(pred))
        else:
            value = spec.compute(y[scored], s[scored]) if scored.any() else None
        out[spec.key] = None if value is None else float(value)
        if value is None:
            reasons[spec.key] = (
                no_pred_reason
                if pred is None and spec.kind == "threshold"
                else ("undefined on these pairs")
            )
    out["null_reasons"] = reasons
    return out
