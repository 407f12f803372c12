"""Uncertainty: seeded bootstrap confidence intervals, McNemar, paired bootstrap of AUC.

The bootstrap resamples pairs with replacement. Scores are put once into tie
groups (distinct values, highest first); a resample then reduces to how many
same- and different-person pairs it drew from each group (one `bincount` over
its draws), and every ranking metric of every resample comes out of cumulative
sums over those group counts, instead of B calls to scikit-learn. The formulas
are the exact ones scikit-learn uses (ROC trapezoid for AUC, step-wise average
precision) and the same EER/TAR rules as `verification`; the tests check them
against scikit-learn on every resample. scikit-learn has no resampling API, and
scipy's `bootstrap` calls the statistic once per resample (far too slow for
1,000 resamples x 5 systems), hence this module.

Intervals are percentile intervals (2.5th and 97.5th percentile for 95%) over
the resamples where the metric is defined; each interval records how many
resamples that was (`n_valid`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from reidbench.metrics._util import fnum
from reidbench.metrics.verification import FAR, TAR_KEY

__all__ = [
    "bootstrap_ci",
    "bootstrap_distribution",
    "bootstrap_indices",
    "iter_bootstrap_indices",
    "mcnemar",
    "paired_bootstrap_auc",
    "percentile_ci",
    "ranking_from_weights",
    "resample_weights",
]

_RANKING_KEYS = ("auc", "pr_auc", "eer", TAR_KEY)
_CHUNK_ELEMENTS = 1 << 21  # index draws per chunk: bounds memory at ~50 MB whatever n and B


def _chunk_rows(n: int, n_resamples: int) -> int:
    return max(1, min(n_resamples, _CHUNK_ELEMENTS // max(n, 1)))


def iter_bootstrap_indices(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Resample index draws as (chunk, n) arrays; determined by (n, n_resamples, seed) alone."""
    rng = np.random.default_rng(seed)
    rows = _chunk_rows(n, n_resamples)
    done = 0
    while done < n_resamples:
        take = min(rows, n_resamples - done)
        yield rng.integers(0, n, size=(take, n), dtype=np.int64)
        done += take


def bootstrap_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """All resample draws as one (n_resamples, n) array (for tests and small inputs)."""
    if n_resamples == 0:
        return np.zeros((0, n), dtype=np.int64)
    return np.concatenate(list(iter_bootstrap_indices(n, n_resamples, seed)))


def resample_weights(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each of the n pairs was drawn in each resample: (B, n) float64 counts."""
    b = idx.shape[0]
    flat = (idx + (np.arange(b, dtype=np.int64) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def _score_groups(s: np.ndarray) -> tuple[np.ndarray, int]:
    """Tie-group id of each score, 0 for the highest distinct value; and the number of groups."""
    if s.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    order = np.argsort(-s, kind="stable")
    s_o = s[order]
    gid = np.empty(s.size, dtype=np.int64)
    gid[order] = np.cumsum(np.r_[True, s_o[1:] != s_o[:-1]]) - 1
    return gid, int(gid.max()) + 1


def _ranking_from_counts(
    pos: np.ndarray, neg: np.ndarray, far: float, only_auc: bool
) -> dict[str, np.ndarray]:
    """Ranking metrics per row from (B, G) same/different counts per tie group, highest first."""
    b = pos.shape[0]
    tp = np.cumsum(pos, axis=1, dtype=np.float64)
    fp = np.cumsum(neg, axis=1, dtype=np.float64)
    n_pos, n_neg = tp[:, -1:], fp[:, -1:]
    valid = (n_pos[:, 0] > 0) & (n_neg[:, 0] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = tp / n_pos
        fpr = fp / n_neg
        tpr_prev = np.zeros_like(tpr)
        tpr_prev[:, 1:] = tpr[:, :-1]
        fpr_prev = np.zeros_like(fpr)
        fpr_prev[:, 1:] = fpr[:, :-1]
        out = {"auc": np.sum((fpr - fpr_prev) * (tpr + tpr_prev), axis=1) / 2.0}
        if not only_auc:
            called = tp + fp
            precision = np.divide(tp, called, out=np.zeros_like(tp), where=called > 0)
            out["pr_auc"] = np.sum((tpr - tpr_prev) * precision, axis=1)
            # EER: FPR - FNR rises from -1 (the origin) to +1; interpolate across zero.
            d = fpr - (1.0 - tpr)
            i = np.argmax(d >= 0, axis=1)
            rows = np.arange(b)
            d1, f1 = d[rows, i], fpr[rows, i]
            d0 = np.where(i > 0, d[rows, i - 1], -1.0)
            f0 = np.where(i > 0, fpr[rows, i - 1], 0.0)
            out["eer"] = f0 + (-d0 / np.where(d1 > d0, d1 - d0, 1.0)) * (f1 - f0)
            out[TAR_KEY] = np.max(np.where(fpr <= far, tpr, 0.0), axis=1)
    for v in out.values():
        v[~valid] = np.nan
    return out


def _group_counts(
    idx: np.ndarray, gid: np.ndarray, y: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """(chunk, G) counts of drawn same / different pairs per tie group; gid -1 = unscored."""
    c = idx.shape[0]
    width = 2 * (n_groups + 1)  # +1: a dump column for unscored pairs
    g = np.where(gid < 0, n_groups, gid)
    cell = 2 * g + y  # group and label in one code
    flat = (cell[idx] + (np.arange(c, dtype=np.int64) * width)[:, None]).ravel()
    counts = np.bincount(flat, minlength=c * width).reshape(c, n_groups + 1, 2)
    return counts[:, :n_groups, 1], counts[:, :n_groups, 0]


def ranking_from_weights(
    y: np.ndarray,
    s: np.ndarray,
    w: np.ndarray,
    far: float = FAR,
    *,
    only_auc: bool = False,
) -> dict[str, np.ndarray]:
    """AUC, average precision, EER and TAR@FAR per row of pair weights (B, n); NaN where a
    class is absent. Weights may be any non-negative numbers, e.g. resample counts."""
    y = np.asarray(y).astype(np.int64)
    s = np.asarray(s, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if y.size == 0:
        return {k: np.full(w.shape[0], np.nan) for k in _RANKING_KEYS[: 1 if only_auc else 4]}
    gid, _ = _score_groups(s)
    order = np.argsort(gid, kind="stable")
    g = gid[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    pos = np.add.reduceat((w * (y == 1))[:, order], starts, axis=1)
    neg = np.add.reduceat((w * (y == 0))[:, order], starts, axis=1)
    return _ranking_from_counts(pos, neg, far, only_auc)


def _threshold_from_counts(cells: np.ndarray) -> dict[str, np.ndarray]:
    """Threshold metrics per row from (B, 4) counts of tn, fp, fn, tp."""
    tn, fp, fn, tp = (cells[:, k].astype(np.float64) for k in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "accuracy": (tp + tn) / (tp + fp + fn + tn),
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
        }


def _row_bincount(codes: np.ndarray, width: int) -> np.ndarray:
    c = codes.shape[0]
    flat = (codes + (np.arange(c, dtype=np.int64) * width)[:, None]).ravel()
    return np.bincount(flat, minlength=c * width).reshape(c, width)


def bootstrap_distribution(
    y_true: np.ndarray,
    scores: np.ndarray,
    y_pred: np.ndarray | None,
    n_resamples: int,
    seed: int,
    *,
    rates: dict[str, np.ndarray] | None = None,
    far: float = FAR,
) -> dict[str, np.ndarray]:
    """Each metric over each resample of the pairs: {metric: (n_resamples,) array, NaN = undefined}.

    ``scores`` may hold NaN for pairs decided without a score: they count in the
    threshold metrics (via ``y_pred``) but not in the ranking metrics, as in the
    point estimates. ``y_pred`` None skips the threshold metrics. ``rates`` adds
    the resampled mean of each given boolean array (e.g. coverage).
    """
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    n = y.size
    if n == 0 or n_resamples == 0:
        return {}
    scored = np.isfinite(s)
    gid = np.full(n, -1, dtype=np.int64)
    gid[scored], n_groups = _score_groups(s[scored])
    cell = None if y_pred is None else 2 * y + np.asarray(y_pred, dtype=np.int64)
    flags = {k: np.asarray(v, dtype=bool) for k, v in (rates or {}).items()}
    parts: dict[str, list[np.ndarray]] = {}
    for idx in iter_bootstrap_indices(n, n_resamples, seed):
        found: dict[str, np.ndarray] = {}
        if cell is not None:
            found.update(_threshold_from_counts(_row_bincount(cell[idx], 4)))
        if n_groups:
            pos, neg = _group_counts(idx, gid, y, n_groups)
            found.update(_ranking_from_counts(pos, neg, far, only_auc=False))
        else:
            found.update({k: np.full(idx.shape[0], np.nan) for k in _RANKING_KEYS})
        for name, f in flags.items():
            found[name] = f[idx].sum(axis=1) / n
        for name, v in found.items():
            parts.setdefault(name, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def percentile_ci(values: np.ndarray, level: float = 0.95) -> dict[str, Any] | None:
    """Percentile interval over the finite values; None when no resample defined the metric."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    alpha = (1.0 - level) / 2.0
    lo, hi = np.percentile(v, [100 * alpha, 100 * (1 - alpha)])
    return {"low": float(lo), "high": float(hi), "n_valid": int(v.size)}


def bootstrap_ci(
    y_true: np.ndarray,
    scores: np.ndarray,
    y_pred: np.ndarray | None,
    n_resamples: int,
    seed: int,
    *,
    level: float = 0.95,
    rates: dict[str, np.ndarray] | None = None,
    metrics: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Percentile bootstrap intervals for every metric; the block written to metrics.json."""
    out: dict[str, Any] = {
        "method": "percentile bootstrap, pairs resampled with replacement",
        "level": level,
        "resamples": int(n_resamples),
        "seed": int(seed),
        "intervals": {},
        "null_reasons": {},
    }
    names = metrics or (
        ("accuracy", "precision", "recall", "f1") * (y_pred is not None)
        + ("auc", "pr_auc", "eer", TAR_KEY)
        + tuple(rates or ())
    )
    if n_resamples == 0:
        out["null_reasons"] = dict.fromkeys(names, "bootstrap disabled (bootstrap = 0)")
        out["intervals"] = dict.fromkeys(names)
        return out
    if np.asarray(y_true).size == 0:
        out["null_reasons"] = dict.fromkeys(names, "no pairs to resample")
        out["intervals"] = dict.fromkeys(names)
        return out
    dist = bootstrap_distribution(y_true, scores, y_pred, n_resamples, seed, rates=rates)
    for name in names:
        ci = percentile_ci(dist[name], level) if name in dist else None
        out["intervals"][name] = ci
        if ci is None:
            out["null_reasons"][name] = "undefined in every resample (e.g. one class only)"
    return out


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, Any]:
    """Exact McNemar test on paired correct/incorrect decisions.

    b = pairs only system A got right, c = pairs only B got right; the p-value
    is the two-sided exact binomial test of b against Binomial(b + c, 1/2)
    (scipy.stats.binomtest). Chosen over the chi-square approximation because
    discordant counts are often small here. With no discordant pairs p = 1.
    """
    a = np.asarray(correct_a, dtype=bool)
    bb = np.asarray(correct_b, dtype=bool)
    b = int(np.sum(a & ~bb))
    c = int(np.sum(~a & bb))
    p = float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue) if b + c else 1.0
    return {
        "test": "exact McNemar (two-sided binomial on discordant pairs)",
        "n": int(a.size),
        "both_correct": int(np.sum(a & bb)),
        "b": b,
        "c": c,
        "both_wrong": int(np.sum(~a & ~bb)),
        "p_value": p,
    }


def paired_bootstrap_auc(
    y_true: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    n_resamples: int,
    seed: int,
    level: float = 0.95,
) -> dict[str, Any]:
    """AUC(A) - AUC(B) on the same pairs, with both systems resampled by the same draws.

    ``p_value`` is the two-sided bootstrap fraction 2 * min(P(diff <= 0), P(diff >= 0)),
    capped at 1: a rough guide, not an exact test.
    """
    y = np.asarray(y_true).astype(np.int64)
    sa = np.asarray(scores_a, dtype=np.float64)
    sb = np.asarray(scores_b, dtype=np.float64)
    out: dict[str, Any] = {
        "n": int(y.size),
        "resamples": int(n_resamples),
        "seed": int(seed),
        "level": level,
        "auc_a": None,
        "auc_b": None,
        "diff": None,
        "mean_diff": None,
        "ci": None,
        "p_value": None,
        "null_reasons": {},
    }
    if y.size == 0 or y.min() == y.max():
        out["null_reasons"]["diff"] = "fewer than two classes among pairs both systems scored"
        return out
    out["auc_a"] = float(roc_auc_score(y, sa))
    out["auc_b"] = float(roc_auc_score(y, sb))
    out["diff"] = out["auc_a"] - out["auc_b"]
    if n_resamples == 0:
        out["null_reasons"]["ci"] = "bootstrap disabled (bootstrap = 0)"
        return out
    ga, na = _score_groups(sa)
    gb, nb = _score_groups(sb)
    diffs = []
    for idx in iter_bootstrap_indices(y.size, n_resamples, seed):
        auc_a = _ranking_from_counts(*_group_counts(idx, ga, y, na), FAR, True)["auc"]
        auc_b = _ranking_from_counts(*_group_counts(idx, gb, y, nb), FAR, True)["auc"]
        diffs.append(auc_a - auc_b)
    d = np.concatenate(diffs)
    d = d[np.isfinite(d)]
    if d.size == 0:
        out["null_reasons"]["ci"] = "every resample had one class only"
        return out
    out["mean_diff"] = fnum(d.mean())
    out["ci"] = percentile_ci(d, level)
    out["p_value"] = float(min(1.0, 2.0 * min(np.mean(d <= 0), np.mean(d >= 0))))
    return out
