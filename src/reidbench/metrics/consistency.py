"""Consistency of judgements: symmetry, repeat stability, transitivity.

A trustworthy judge gives the same answer for (a, b) and (b, a), for the same
call made twice, and never says a = b, b = c but a != c. These functions take
decisions (True = same) and scores already extracted from the scores table;
`run_metrics` picks the rows (order, repeat, status ok).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics._util import fnum

__all__ = ["repeat_stability", "symmetry", "transitivity"]


def symmetry(
    same_ab: np.ndarray | None,
    same_ba: np.ndarray | None,
    score_ab: np.ndarray,
    score_ba: np.ndarray,
) -> dict[str, Any]:
    """Disagreement between (a, b) and (b, a) over pairs answered in both orders.

    Decision arrays may be None when the system has no threshold yet; score
    gaps use only pairs with a score in both orders.
    """
    sa = np.asarray(score_ab, dtype=np.float64)
    sb = np.asarray(score_ba, dtype=np.float64)
    out: dict[str, Any] = {"n_pairs": int(sa.size), "null_reasons": {}}
    if same_ab is None or same_ba is None or sa.size == 0:
        out["disagreements"] = None
        out["disagreement_rate"] = None
        out["null_reasons"]["disagreement_rate"] = (
            "no pair answered in both orders" if sa.size == 0 else "no decision threshold"
        )
    else:
        dis = np.asarray(same_ab, dtype=bool) != np.asarray(same_ba, dtype=bool)
        out["disagreements"] = int(dis.sum())
        out["disagreement_rate"] = float(dis.mean())
    both = np.isfinite(sa) & np.isfinite(sb)
    gap = np.abs(sa[both] - sb[both])
    out["n_scored"] = int(both.sum())
    if gap.size:
        out["mean_abs_score_gap"] = float(gap.mean())
        out["median_abs_score_gap"] = float(np.median(gap))
        out["max_abs_score_gap"] = float(gap.max())
    else:
        out.update(mean_abs_score_gap=None, median_abs_score_gap=None, max_abs_score_gap=None)
        out["null_reasons"]["mean_abs_score_gap"] = "no pair scored in both orders"
    return out


def _groups(pair_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort order, group start offsets and group sizes for rows grouped by pair id."""
    order = np.argsort(pair_ids, kind="stable")
    ids = pair_ids[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    sizes = np.diff(np.r_[starts, ids.size])
    return order, starts, sizes


def repeat_stability(
    pair_ids: np.ndarray, same: np.ndarray | None, scores: np.ndarray
) -> dict[str, Any]:
    """Agreement across repeated identical calls, over pairs answered at least twice.

    ``decision_agreement``: fraction of those pairs whose repeats all agree.
    ``mean_score_std``: mean over pairs of the per-pair score std (ddof=0);
    ``mean_score_range`` / ``max_score_range``: per-pair max - min.
    """
    ids = np.asarray(pair_ids, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    out: dict[str, Any] = {"null_reasons": {}}
    if ids.size == 0:
        out.update(n_pairs=0, max_repeats=0, decision_agreement=None, flipped_pairs=None)
        out.update(mean_score_std=None, mean_score_range=None, max_score_range=None)
        out["n_scored_pairs"] = 0
        out["null_reasons"]["decision_agreement"] = "no pair answered more than once"
        return out
    order, starts, sizes = _groups(ids)
    multi = sizes >= 2
    out["n_pairs"] = int(multi.sum())
    out["max_repeats"] = int(sizes.max())
    if same is None or not multi.any():
        out["decision_agreement"] = None
        out["flipped_pairs"] = None
        out["null_reasons"]["decision_agreement"] = (
            "no decision threshold" if multi.any() else "no pair answered more than once"
        )
    else:
        d = np.asarray(same, dtype=np.int64)[order]
        agree = np.minimum.reduceat(d, starts) == np.maximum.reduceat(d, starts)
        out["decision_agreement"] = float(agree[multi].mean())
        out["flipped_pairs"] = int((~agree[multi]).sum())
    stds, ranges = [], []
    s_sorted = s[order]
    for start, size in zip(starts[multi], sizes[multi], strict=True):
        vals = s_sorted[start : start + size]
        vals = vals[np.isfinite(vals)]
        if vals.size >= 2:
            stds.append(vals.std())
            ranges.append(vals.max() - vals.min())
    out["n_scored_pairs"] = len(stds)
    if stds:
        out["mean_score_std"] = float(np.mean(stds))
        out["mean_score_range"] = float(np.mean(ranges))
        out["max_score_range"] = float(np.max(ranges))
    else:
        out.update(mean_score_std=None, mean_score_range=None, max_score_range=None)
        out["null_reasons"]["mean_score_std"] = "no pair scored more than once"
    return out


def transitivity(
    triplets: np.ndarray,
    pair_ids: np.ndarray,
    same: np.ndarray,
    *,
    k_examples: int = 12,
) -> dict[str, Any]:
    """Violations of "same person" being an equivalence over triplets [ab, bc, ac] of pair ids.

    A triplet is evaluated when all three pairs were decided. It violates
    transitivity when exactly two of its three pairs are decided "same" (any two
    equalities force the third). ``strict_violations`` counts the literal rule
    of the issue: ab same, bc same, ac different.
    """
    trip = np.asarray(triplets, dtype=np.int64).reshape(-1, 3)
    ids = np.asarray(pair_ids, dtype=np.int64)
    dec = np.asarray(same, dtype=bool)
    out: dict[str, Any] = {"n_triplets": int(trip.shape[0]), "null_reasons": {}}
    lookup = {int(p): bool(d) for p, d in zip(ids, dec, strict=True)}
    evaluated = []
    for row in trip:
        got = [lookup.get(int(p)) for p in row]
        if all(g is not None for g in got):
            evaluated.append((row, got))
    out["n_evaluated"] = len(evaluated)
    if not evaluated:
        out.update(violations=None, violation_rate=None, strict_violations=None, examples=[])
        out["null_reasons"]["violation_rate"] = (
            "the pair set has no triplets" if trip.size == 0 else "no triplet fully decided"
        )
        return out
    viol = [(row, got) for row, got in evaluated if sum(bool(g) for g in got) == 2]
    strict = sum(1 for _, got in viol if got[0] and got[1] and not got[2])
    out["violations"] = len(viol)
    out["violation_rate"] = fnum(len(viol) / len(evaluated))
    out["strict_violations"] = strict
    out["examples"] = [
        {
            "pair_ids": {"ab": int(row[0]), "bc": int(row[1]), "ac": int(row[2])},
            "same": {"ab": got[0], "bc": got[1], "ac": got[2]},
        }
        for row, got in viol[:k_examples]
    ]
    return out
