"""Coverage-aware metrics: an abstention counts at its expected value as a coin flip.

Why: scored on answered pairs only, a system that refuses the pairs it finds
hard looks better than the same system answering them (issue 9: refusing 45 %
near the threshold raised AUC 0.868 -> 0.925); scored as failures-as-wrong, it
is punished below chance. The coin flip is the value of an abstention to a
user who must still decide: deterministic (its expectation, not a draw).

Rules (every pair the system was meant to answer counts; docs/metrics.md,
"Statistics"):
- decision metrics: an abstained pair is half "same", half "different" in
  the expected confusion matrix (tp, fp, fn, tn get 0.5 each where they can).
  Accuracy is then exactly the expected accuracy under the coin flip;
  precision, recall and F1 are ratios of expected counts (not expectations of
  ratios, which have no closed form), so they are defined on the same
  confusion matrix as accuracy.
- ranking metrics: an abstained pair, or one answered without a score, is
  tied with every pair of the other class (its share of the AUC is one half).
  This is the ROC of the randomised rule "coin flip on abstentions, threshold
  on the rest": at each threshold TPR = (TP + P_abstained / 2) / P, likewise
  FPR, with the origin and (1, 1) as end points; its trapezoid area equals
  the tied AUC exactly, so EER (interpolated crossing of FPR = FNR) and
  TAR@FAR (largest TPR at a point with FPR <= FAR, no interpolation, as in
  `verification`) come off the same curve. A system that abstains on more
  than 2 x FAR of the different-person pairs cannot reach FAR at any point
  but the origin: its TAR@FAR is 0, as it should be for a coin flip.
  Average precision has no coin-flip counterpart here and is left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics._util import fnum, fnums
from reidbench.metrics.stats import (
    interval_from_weights,
    paired_difference_test,
    paired_from_weights,
)
from reidbench.metrics.verification import FAR, TAR_KEY

__all__ = [
    "COVERAGE_METRICS",
    "coverage_aware_ci",
    "coverage_aware_metrics",
    "coverage_aware_paired",
    "coverage_from_weights",
    "expected_correct",
    "risk_coverage",
    "threshold_confidence",
]

# The coin-flip versions computed here (specs with a coverage_help are shown in the report).
COVERAGE_METRICS = ("accuracy", "precision", "recall", "f1", "auc", "eer", TAR_KEY, "coverage")


def expected_correct(y_true: np.ndarray, y_pred: np.ndarray, answered: np.ndarray) -> np.ndarray:
    """Per pair: 1 right, 0 wrong, 0.5 abstained (a coin flip's expected correctness)."""
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    ans = np.asarray(answered, dtype=bool)
    return np.where(ans, (p == y).astype(np.float64), 0.5)


def _grouped(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order by score, highest first, and the start of each tie group in that order."""
    order = np.argsort(-s, kind="stable")
    so = s[order]
    starts = np.flatnonzero(np.r_[True, so[1:] != so[:-1]]) if so.size else np.zeros(0, np.int64)
    return order, starts


def coverage_from_weights(
    y_true: np.ndarray,
    scores: np.ndarray,
    y_pred: np.ndarray | None,
    answered: np.ndarray,
    far: float = FAR,
    *,
    only_auc: bool = False,
) -> Any:
    """A function w -> {metric: (B,) array} of the coverage-aware metrics for (B, n) pair
    weights (resample counts; ones give the point values). NaN where a class is absent.
    ``only_auc`` computes the AUC alone (paired comparisons)."""
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    ans = np.asarray(answered, dtype=bool)
    ranked = ans & np.isfinite(s)
    r_idx = np.flatnonzero(ranked)
    order, starts = _grouped(s[r_idx])
    r_sorted = r_idx[order]
    pos_r = (y[r_sorted] == 1).astype(np.float64)
    abs_pos = ((~ranked) & (y == 1)).astype(np.float64)
    abs_neg = ((~ranked) & (y == 0)).astype(np.float64)
    cells = None
    if y_pred is not None:
        p = np.asarray(y_pred, dtype=np.int64)
        cells = np.zeros((y.size, 4))
        a = np.flatnonzero(ans)
        cells[a, 2 * y[a] + p[a]] = 1.0
        u = np.flatnonzero(~ans)
        cells[u, 2 * y[u]] = 0.5
        cells[u, 2 * y[u] + 1] = 0.5

    def fn(w: np.ndarray) -> dict[str, np.ndarray]:
        w = np.asarray(w, dtype=np.float64)
        b = w.shape[0]
        out: dict[str, np.ndarray] = {}
        with np.errstate(divide="ignore", invalid="ignore"):
            if cells is not None:
                tn, fp, fn_, tp = (w @ cells).T
                out["accuracy"] = (tp + tn) / (tp + fp + fn_ + tn)
                out["precision"] = tp / (tp + fp)
                out["recall"] = tp / (tp + fn_)
                out["f1"] = 2 * tp / (2 * tp + fp + fn_)
            ws = w[:, r_sorted]
            if starts.size:
                pos = np.add.reduceat(ws * pos_r, starts, axis=1)
                neg = np.add.reduceat(ws * (1.0 - pos_r), starts, axis=1)
            else:
                pos = neg = np.zeros((b, 0))
            tp_c, fp_c = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
            half_p, half_n = (w @ abs_pos)[:, None] / 2.0, (w @ abs_neg)[:, None] / 2.0
            n_pos = (tp_c[:, -1:] if starts.size else 0.0) + 2 * half_p
            n_neg = (fp_c[:, -1:] if starts.size else 0.0) + 2 * half_n
            zeros, ones = np.zeros((b, 1)), np.ones((b, 1))
            tpr = np.hstack([zeros, half_p / n_pos, (tp_c + half_p) / n_pos, ones])
            fpr = np.hstack([zeros, half_n / n_neg, (fp_c + half_n) / n_neg, ones])
            out["auc"] = np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]), axis=1) / 2
            valid = (n_pos[:, 0] > 0) & (n_neg[:, 0] > 0)
            if only_auc:
                out["auc"][~valid] = np.nan
                return out
            d = fpr - (1.0 - tpr)
            i = np.argmax(d >= 0, axis=1)  # >= 1: the origin has d = -1
            rows = np.arange(b)
            d1, f1 = d[rows, i], fpr[rows, i]
            d0, f0 = d[rows, i - 1], fpr[rows, i - 1]
            out["eer"] = f0 + (-d0 / np.where(d1 > d0, d1 - d0, 1.0)) * (f1 - f0)
            out[TAR_KEY] = np.max(np.where(fpr <= far, tpr, 0.0), axis=1)
            for k in ("auc", "eer", TAR_KEY):
                out[k][~valid] = np.nan
            out["coverage"] = (w @ ans.astype(np.float64)) / w.sum(axis=1)
        return out

    return fn


def coverage_aware_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    y_pred: np.ndarray | None,
    answered: np.ndarray,
    far: float = FAR,
) -> dict[str, Any]:
    """Point values of the coverage-aware metrics over every pair (module docstring).

    ``scores``: NaN where the system gave no score; ``y_pred``: decisions (any
    value where not answered), None when the system has no threshold;
    ``answered``: the system gave a usable answer (not refusal, safety block,
    parse or API error).
    """
    y = np.asarray(y_true).astype(np.int64)
    ans = np.asarray(answered, dtype=bool)
    out: dict[str, Any] = {"n": int(y.size), "n_answered": int(ans.sum())}
    reasons: dict[str, str] = {}
    names = COVERAGE_METRICS if y_pred is not None else ("auc", "eer", TAR_KEY, "coverage")
    if y.size == 0:
        out.update(dict.fromkeys(names))
        reasons.update(dict.fromkeys(names, "no pairs"))
    else:
        vals = coverage_from_weights(y, scores, y_pred, ans, far)(np.ones((1, y.size)))
        for k in names:
            out[k] = fnum(vals[k][0])
            if out[k] is None:
                reasons[k] = "undefined: one class only, or no pair decided 'same'"
    if y_pred is None:
        reasons.update(dict.fromkeys(("accuracy", "precision", "recall", "f1"), "no decisions"))
    out["rule"] = "abstentions count as a coin flip: 0.5 correct; tied with the other class"
    out["null_reasons"] = reasons
    return out


def coverage_aware_ci(
    y_true: np.ndarray,
    scores: np.ndarray,
    y_pred: np.ndarray | None,
    answered: np.ndarray,
    n_resamples: int,
    seed: int,
    *,
    clusters: object | None = None,
    level: float = 0.95,
    far: float = FAR,
) -> dict[str, Any]:
    """Intervals for the coverage-aware metrics: the pair bootstrap (clusters None) or the
    two-way cluster bootstrap (`stats.interval_from_weights`); shaped like `bootstrap_ci`."""
    y = np.asarray(y_true).astype(np.int64)
    names = COVERAGE_METRICS if y_pred is not None else ("auc", "eer", TAR_KEY, "coverage")
    out: dict[str, Any] = {
        "method": "percentile bootstrap, pairs resampled with replacement"
        if clusters is None
        else "two-way cluster bootstrap (V_clusters - 2 V_dyads), normal interval; "
        "TAR@FAR: percentile of the pigeonhole draws",
        "level": level,
        "resamples": int(n_resamples),
        "seed": int(seed),
        "intervals": dict.fromkeys(names),
        "null_reasons": {},
    }
    if n_resamples == 0 or y.size == 0:
        why = "bootstrap disabled (bootstrap = 0)" if n_resamples == 0 else "no pairs"
        out["null_reasons"] = dict.fromkeys(names, why)
        return out
    fn = coverage_from_weights(y, scores, y_pred, answered, far)
    found = interval_from_weights(fn, y.size, n_resamples, seed, clusters=clusters, level=level)
    for k in names:
        out["intervals"][k] = found.get(k)
        if found.get(k) is None:
            out["null_reasons"][k] = "undefined in every resample (e.g. one class only)"
    return out


def coverage_aware_paired(
    y_true: np.ndarray,
    a: tuple[np.ndarray, np.ndarray | None, np.ndarray],
    b: tuple[np.ndarray, np.ndarray | None, np.ndarray],
    n_resamples: int,
    seed: int,
    *,
    clusters: object | None = None,
    level: float = 0.95,
) -> dict[str, Any]:
    """Paired tests of system A against B on the coverage-aware values of the same pairs.

    ``a``/``b``: (scores, y_pred or None, answered). Returns {"accuracy": the
    paired test of expected correctness (`stats.paired_difference_test`; None
    without decisions), "auc": the paired AUC difference (`stats.paired_from_weights`)}.
    """
    y = np.asarray(y_true).astype(np.int64)
    out: dict[str, Any] = {"n": int(y.size), "accuracy": None, "auc": None, "null_reasons": {}}
    if a[1] is not None and b[1] is not None:
        ca = expected_correct(y, a[1], a[2])
        cb = expected_correct(y, b[1], b[2])
        out["accuracy"] = paired_difference_test(ca, cb, clusters=clusters)
    else:
        out["null_reasons"]["accuracy"] = "a system has no decisions"
    if y.size == 0 or y.min() == y.max():
        out["null_reasons"]["auc"] = "fewer than two classes among the pairs"
        return out
    fa = coverage_from_weights(y, a[0], None, a[2], only_auc=True)
    fb = coverage_from_weights(y, b[0], None, b[2], only_auc=True)

    def fn_diff(w: np.ndarray) -> np.ndarray:
        return fa(w)["auc"] - fb(w)["auc"]

    if n_resamples == 0:
        out["auc"] = {"diff": fnum(fn_diff(np.ones((1, y.size)))[0]), "ci": None, "p_value": None}
        out["null_reasons"]["auc_ci"] = "bootstrap disabled (bootstrap = 0)"
        return out
    out["auc"] = paired_from_weights(
        fn_diff, y.size, n_resamples, seed, clusters=clusters, level=level
    )
    return out


def threshold_confidence(scores: np.ndarray, threshold: float | None) -> np.ndarray:
    """Confidence of a thresholded decision: |score - threshold| (distance from the decision
    boundary); -inf where there is no score (ranked after every scored pair)."""
    s = np.asarray(scores, dtype=np.float64)
    if threshold is None:
        return np.full(s.size, -np.inf)
    return np.where(np.isfinite(s), np.abs(s - float(threshold)), -np.inf)


def risk_coverage(
    y_true: np.ndarray, y_pred: np.ndarray, confidence: np.ndarray, answered: np.ndarray
) -> dict[str, Any]:
    """Risk-coverage curve and AURC (Geifman & El-Yaniv 2017), abstentions included.

    Answered pairs are taken most confident first; at the end of each tie group,
    coverage = taken / all pairs and risk = error rate of those taken. The
    system's own abstentions come last, at the coin-flip risk of 0.5 each, so the
    curve reaches coverage 1 and its area (``aurc``: sum over groups of
    group share x risk at the group's end) cannot be lowered by refusing.
    ``aurc_answered`` is the area of the answered-only curve rescaled to its own
    coverage (optimistic, as answered-only metrics are).
    """
    y = np.asarray(y_true).astype(bool)
    ans = np.asarray(answered, dtype=bool)
    n = int(y.size)
    out: dict[str, Any] = {"n": n, "n_answered": int(ans.sum())}
    if n == 0:
        out.update(coverage=[], risk=[], aurc=None, aurc_answered=None, coverage_max=None)
        out["risk_full_coverage"] = None
        return out
    err = np.where(ans, (np.asarray(y_pred).astype(bool) != y).astype(np.float64), 0.5)
    conf = np.asarray(confidence, dtype=np.float64)
    a = np.flatnonzero(ans)
    order = a[np.argsort(-conf[a], kind="stable")]
    co = conf[order]
    ends = np.r_[np.flatnonzero(co[1:] != co[:-1]), co.size - 1] if co.size else np.zeros(0, int)
    taken = ends + 1
    cum_err = np.cumsum(err[order])[ends] if co.size else np.zeros(0)
    cov = taken / n
    risk = cum_err / np.maximum(taken, 1)
    sizes = np.diff(np.r_[0, taken])
    aurc_ans = float(np.sum(sizes * risk) / taken[-1]) if co.size else None
    n_abs = n - int(ans.sum())
    if n_abs:
        cov = np.r_[cov, 1.0]
        risk = np.r_[risk, (cum_err[-1] if co.size else 0.0) / n + 0.5 * n_abs / n]
        sizes = np.r_[sizes, n_abs]
    out.update(
        coverage=fnums(cov),
        risk=fnums(risk),
        aurc=float(np.sum(sizes * risk) / n),
        aurc_answered=aurc_ans,
        coverage_max=float(ans.mean()),
        risk_full_coverage=float(risk[-1]),
    )
    return out
