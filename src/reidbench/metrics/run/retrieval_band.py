"""Intervals for retrieval (issue #15): a CMC band and paired re-ranking tests.

Queries of one person are not independent (same identity, similar images), so, as for
the pair intervals elsewhere, the bootstrap resamples **query identities** with
replacement and takes every query of a drawn identity (a one-way cluster bootstrap;
percentile intervals). The re-ranking test pairs each query's before and after values
on the same draws, and adds the exact McNemar test on rank-1 hits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from reidbench.metrics._util import fnum, fnums
from reidbench.metrics.run.bootstrap import Bootstrap

RESAMPLES = 1000  # re-ranking has no bootstrap setting of its own
BAND_RULE = (
    "percentile bootstrap over query identities (every query of a drawn identity, drawn with "
    "replacement), the same draws for every rank"
)


def identity_weights(pids: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) weights: how often each query's identity was drawn in each resample."""
    _, codes = np.unique(np.asarray(pids), return_inverse=True)
    n_ids = int(codes.max()) + 1 if codes.size else 0
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_ids, size=(n_boot, n_ids))
    counts = np.zeros((n_boot, n_ids))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return counts[:, codes]


def _percentile(values: np.ndarray, level: float) -> dict[str, Any] | None:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None
    lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2])
    return {"low": float(lo), "high": float(hi), "n_valid": int(v.size)}


def per_query_arrays(pq: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(pid, first_match_rank 0-based, AP) from a retrieval entry's `per_query`, or None."""
    if not isinstance(pq, Mapping):
        return None
    try:
        pid = np.asarray(pq["pid"], dtype=np.int64)
        rank = np.asarray(pq["first_match_rank"], dtype=np.int64)
        ap = np.asarray(pq["AP"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return None
    if not (pid.size == rank.size == ap.size) or pid.size == 0:
        return None
    return pid, rank, ap


def cmc_band(
    pq: Any, max_rank: int, n_boot: int, seed: int, level: float = 0.95
) -> dict[str, Any] | None:
    """CMC at ranks 1..max_rank with a pointwise interval, plus mAP's interval."""
    arrays = per_query_arrays(pq)
    if arrays is None or max_rank < 1 or n_boot < 1:
        return None
    pid, rank, ap = arrays
    hits = (rank[:, None] < np.arange(1, max_rank + 1)[None, :]).astype(np.float64)
    w = identity_weights(pid, n_boot, seed)
    total = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        cmc_b = (w @ hits) / total
        map_b = (w @ ap) / total[:, 0]
    bands = [_percentile(cmc_b[:, k], level) for k in range(max_rank)]
    return {
        "cmc": fnums(hits.mean(axis=0)),
        "low": [b["low"] if b else None for b in bands],
        "high": [b["high"] if b else None for b in bands],
        "mAP": fnum(ap.mean()),
        "mAP_ci": _percentile(map_b, level),
        "n_queries": int(pid.size),
        "n_identities": int(np.unique(pid).size),
        "resamples": n_boot,
        "seed": seed,
        "level": level,
        "rule": BAND_RULE,
    }


def with_band(entry: Any, n_boot: int, seed: int, level: float = 0.95) -> Any:
    """A retrieval.json entry for metrics.json: its per-query lists replaced by the band."""
    if not isinstance(entry, Mapping):
        return entry
    out = {k: v for k, v in entry.items() if k != "per_query"}
    cmc = entry.get("cmc")
    band = cmc_band(
        entry.get("per_query"), len(cmc) if isinstance(cmc, list) else 0, n_boot, seed, level
    )
    if band is not None:  # older retrieval.json files have no per-query ranks: no band
        out["cmc_band"] = band
    return out


def rerank_paired(
    pid: np.ndarray,
    rank_before: np.ndarray,
    rank_after: np.ndarray,
    ap_before: np.ndarray,
    ap_after: np.ndarray,
    *,
    n_boot: int = RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """After minus before on the same queries: rank-1 and mAP differences with paired
    bootstrap intervals (query identities resampled) and exact McNemar on rank-1 hits."""
    hit_b = np.asarray(rank_before) == 0
    hit_a = np.asarray(rank_after) == 0
    d_hit = hit_a.astype(np.float64) - hit_b
    d_ap = np.asarray(ap_after, dtype=np.float64) - np.asarray(ap_before, dtype=np.float64)
    w = identity_weights(pid, n_boot, seed)
    total = w.sum(axis=1)
    out: dict[str, Any] = {"n_queries": int(d_hit.size), "direction": "after minus before"}
    for key, d, before, after in (
        ("rank1", d_hit, hit_b.mean(), hit_a.mean()),
        ("mAP", d_ap, np.mean(ap_before), np.mean(ap_after)),
    ):
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = (w @ d) / total
        fin = boot[np.isfinite(boot)]
        p = 2.0 * min(np.mean(fin <= 0), np.mean(fin >= 0)) if fin.size else 1.0
        out[key] = {
            "before": fnum(before),
            "after": fnum(after),
            "diff": fnum(d.mean()),
            "ci": _percentile(boot, level),
            "p_value": float(min(1.0, p)) if d.any() else 1.0,
            "p_value_rule": "two-sided bootstrap fraction on the far side of 0",
        }
    out["mcnemar"] = Bootstrap(n_boot=n_boot, seed=seed).exact_mcnemar(hit_a, hit_b)
    out["mcnemar"]["direction"] = "b: queries only after re-ranking got right at rank 1"
    out["rule"] = (
        f"paired percentile bootstrap over query identities ({n_boot} resamples, seed {seed}); "
        "exact McNemar (two-sided binomial) on rank-1 hits"
    )
    return out
