"""Pair-verification metrics: plain functions over numpy arrays, scikit-learn style.

Conventions (docs/metrics.md has the full protocol):
- labels: 1 = same person, 0 = different person;
- a pair is decided "same" when ``score >= threshold`` (note the >=);
- ``pr_auc`` is scikit-learn's ``average_precision_score`` (step-wise area, no
  interpolation), not the trapezoid under the PR curve, which is optimistic;
- EER is read off the ROC curve by linear interpolation between the two ROC
  points where FPR - FNR changes sign;
- TAR@FAR is the largest TPR among ROC points with FPR <= FAR, no interpolation
  (conservative: with fewer than 1/FAR negatives this means zero false accepts).

Every function returns None (with a reason under ``null_reasons``) where a
number is undefined, never NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from reidbench.metrics._util import fnum, fnums
from reidbench.metrics.specs import FAR, TAR_KEY, keys

__all__ = [
    "FAR",
    "TAR_KEY",
    "best_f1_threshold",
    "calibration_bins",
    "confusion",
    "decide",
    "eer_from_roc",
    "pr_curve_json",
    "ranking_metrics",
    "roc_curve_json",
    "roc_points",
    "score_distributions",
    "tar_at_far_from_roc",
    "threshold_metrics",
]

# The metrics this module computes, in table order (reidbench.metrics.specs); a spec
# with its own `compute` is computed by `metrics.run.blocks` instead.
THRESHOLD_METRICS = keys("threshold", builtin=True)
RANKING_METRICS = keys("ranking", builtin=True)


def decide(scores: np.ndarray, threshold: float | None, stated_same: np.ndarray) -> np.ndarray:
    """Decisions (True = same): ``score >= threshold`` where a score exists, else the stated one.

    ``stated_same`` is the system's own decision, used only for pairs without a
    score (a prompt that answers same/different and no number). With no
    threshold, scored pairs cannot be decided: the caller must not pass any.
    """
    s = np.asarray(scores, dtype=np.float64)
    stated = np.asarray(stated_same, dtype=bool)
    has = np.isfinite(s)
    if threshold is None:
        if has.any():
            raise ValueError("scored pairs need a threshold to be decided")
        return stated.copy()
    return np.where(has, s >= threshold, stated)


def threshold_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Accuracy, precision, recall and F1 of decisions (scikit-learn, ``zero_division=nan``)."""
    y = np.asarray(y_true).astype(np.int64)
    p = np.asarray(y_pred).astype(np.int64)
    out: dict[str, Any] = {"n": int(y.size)}
    reasons: dict[str, str] = {}
    if y.size == 0:
        out.update(dict.fromkeys(THRESHOLD_METRICS))
        reasons.update(dict.fromkeys(THRESHOLD_METRICS, "no decided pairs"))
        out["null_reasons"] = reasons
        return out
    out["accuracy"] = fnum(accuracy_score(y, p))
    prec, rec, f1, _ = precision_recall_fscore_support(
        y, p, average="binary", pos_label=1, zero_division=np.nan
    )
    out["precision"], out["recall"], out["f1"] = fnum(prec), fnum(rec), fnum(f1)
    if out["precision"] is None:
        reasons["precision"] = "no pair was decided 'same'"
    if out["recall"] is None:
        reasons["recall"] = "no same-person pairs"
    if out["f1"] is None:
        reasons["f1"] = "no same-person pairs and no pair decided 'same'"
    out["null_reasons"] = reasons
    return out


def roc_points(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every ROC point (no points dropped): fpr, tpr, thresholds (first threshold is +inf)."""
    return roc_curve(
        np.asarray(y_true), np.asarray(scores, dtype=np.float64), drop_intermediate=False
    )


def eer_from_roc(
    fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray
) -> tuple[float, float | None]:
    """Equal error rate and the threshold of the first ROC point with FPR >= FNR.

    FPR - FNR rises monotonically along the ROC curve from -1 to 1; the EER is
    the FPR where the straight segment between the last point below zero and
    the first at or above zero crosses zero (there FPR = FNR exactly).
    """
    fpr = np.asarray(fpr, dtype=np.float64)
    fnr = 1.0 - np.asarray(tpr, dtype=np.float64)
    d = fpr - fnr
    i = int(np.argmax(d >= 0))
    if i == 0 or d[i] == 0:
        return float(fpr[i]), fnum(thresholds[i])
    t = -d[i - 1] / (d[i] - d[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1])), fnum(thresholds[i])


def tar_at_far_from_roc(
    fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray, far: float = FAR
) -> tuple[float, float | None]:
    """Largest TPR among ROC points with FPR <= far, and that point's threshold.

    Among points with the same TPR the one with the highest threshold is named.
    The threshold is None when only the (0, 0) point qualifies (accept nothing).
    """
    fpr = np.asarray(fpr, dtype=np.float64)
    tpr = np.asarray(tpr, dtype=np.float64)
    ok = np.flatnonzero(fpr <= far)  # never empty: the ROC starts at (0, 0)
    best = ok[np.argmax(tpr[ok])]  # argmax returns the first, i.e. highest threshold
    return float(tpr[best]), fnum(thresholds[best])


def ranking_metrics(y_true: np.ndarray, scores: np.ndarray, far: float = FAR) -> dict[str, Any]:
    """AUC, PR-AUC (average precision), EER and TAR@FAR over scored pairs."""
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    out: dict[str, Any] = {"n_scored": int(y.size)}
    out.update(dict.fromkeys((*RANKING_METRICS, "eer_threshold", f"{TAR_KEY}_threshold")))
    reasons: dict[str, str] = {}
    out["null_reasons"] = reasons
    n_pos = int(y.sum())
    reason = None
    if y.size == 0:
        reason = "no scored pairs"
    elif n_pos == 0 or n_pos == y.size:
        reason = "only one class among scored pairs"
    if reason:
        reasons.update(dict.fromkeys(RANKING_METRICS, reason))
        return out
    out["auc"] = fnum(roc_auc_score(y, s))
    out["pr_auc"] = fnum(average_precision_score(y, s))
    fpr, tpr, thr = roc_points(y, s)
    out["eer"], out["eer_threshold"] = eer_from_roc(fpr, tpr, thr)
    out[TAR_KEY], out[f"{TAR_KEY}_threshold"] = tar_at_far_from_roc(fpr, tpr, thr, far)
    if out[f"{TAR_KEY}_threshold"] is None:
        reasons[f"{TAR_KEY}_threshold"] = "no threshold accepts a pair at this FAR"
    return out


def best_f1_threshold(
    y_true: np.ndarray, scores: np.ndarray
) -> tuple[float | None, float | None, str | None]:
    """The threshold with the best F1 on these pairs: (threshold, f1, reason if None).

    Candidates are the distinct scores (decide same when ``score >= candidate``).
    Ties go to the highest candidate (fewest accepts). The returned threshold is
    the midpoint between the winning score and the next lower distinct score,
    which decides these pairs identically but does not sit on a training point.
    """
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if y.size == 0:
        return None, None, "no scored pairs to tune on"
    if y.sum() == 0:
        return None, None, "no same-person pairs to tune on"
    precision, recall, cand = precision_recall_curve(y, s, drop_intermediate=False)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    best = np.flatnonzero(np.isclose(f1, f1.max(), rtol=1e-12, atol=0.0))[-1]
    t = float(cand[best])
    if best > 0:
        t = float((cand[best] + cand[best - 1]) / 2.0)
    return t, float(f1[best]), None


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Confusion matrix with rows = truth, columns = decision, order (different, same)."""
    y = np.asarray(y_true).astype(np.int64)
    p = np.asarray(y_pred).astype(np.int64)
    cm = confusion_matrix(y, p, labels=[0, 1]) if y.size else np.zeros((2, 2), np.int64)
    tn, fp, fn, tp = (int(v) for v in cm.ravel())
    return {
        "labels": ["different", "same"],
        "rows": "true label",
        "columns": "decision",
        "matrix": [[tn, fp], [fn, tp]],
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
    }


def _describe(values: np.ndarray) -> dict[str, Any]:
    if values.size == 0:
        return {"n": 0, "mean": None, "std": None, "median": None, "min": None, "max": None}
    return {
        "n": int(values.size),
        "mean": fnum(values.mean()),
        "std": fnum(values.std()),  # population std (ddof=0)
        "median": fnum(np.median(values)),
        "min": fnum(values.min()),
        "max": fnum(values.max()),
    }


def score_distributions(
    y_true: np.ndarray, scores: np.ndarray, scale: float, bins: int = 20
) -> dict[str, Any]:
    """Per-label summary statistics and a shared-edges histogram on the system's own scale."""
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    lo = min(0.0, float(s.min())) if s.size else 0.0
    hi = max(float(scale), float(s.max())) if s.size else float(scale)
    edges = np.linspace(lo, hi, bins + 1)
    same, diff = s[y == 1], s[y == 0]
    return {
        "scale": float(scale),
        "std_ddof": 0,
        "same": _describe(same),
        "different": _describe(diff),
        "histogram": {
            "edges": fnums(edges),
            "same": [int(c) for c in np.histogram(same, bins=edges)[0]],
            "different": [int(c) for c in np.histogram(diff, bins=edges)[0]],
            "note": "numpy.histogram: bins are [lo, hi) except the last, which is [lo, hi]",
        },
    }


def _thin(n: int, max_points: int) -> np.ndarray:
    """Indices that keep at most max_points, always including the first and last."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def roc_curve_json(y_true: np.ndarray, scores: np.ndarray, max_points: int = 1000) -> dict:
    """ROC curve for plotting (scikit-learn ``roc_curve``, collinear points dropped)."""
    fpr, tpr, thr = roc_curve(np.asarray(y_true), np.asarray(scores, dtype=np.float64))
    keep = _thin(fpr.size, max_points)
    return {
        "fpr": fnums(fpr[keep]),
        "tpr": fnums(tpr[keep]),
        "thresholds": fnums(thr[keep]),
        "note": "threshold null = +inf (accept nothing)",
    }


def pr_curve_json(y_true: np.ndarray, scores: np.ndarray, max_points: int = 1000) -> dict:
    """Precision-recall curve for plotting (scikit-learn ``precision_recall_curve``)."""
    precision, recall, thr = precision_recall_curve(
        np.asarray(y_true), np.asarray(scores, dtype=np.float64)
    )
    thr_full = np.append(thr, np.inf)  # the last point (recall 0) has no threshold
    keep = _thin(precision.size, max_points)
    return {
        "precision": fnums(precision[keep]),
        "recall": fnums(recall[keep]),
        "thresholds": fnums(thr_full[keep]),
        "note": "threshold null = the end point (precision 1, recall 0) with no threshold",
    }


def calibration_bins(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Reliability diagram on ``score / scale`` (uniform bins), Brier score and ECE.

    The per-bin fractions are scikit-learn's ``calibration_curve``; the counts
    (which it does not return) use its exact bin rule so the two line up.
    ECE = sum over bins of (n_bin / n) * |fraction_positive - mean_predicted|.
    """
    y = np.asarray(y_true).astype(np.int64)
    p = np.clip(np.asarray(prob, dtype=np.float64), 0.0, 1.0)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    out: dict[str, Any] = {"normalised": "score / scale, clipped to [0, 1]", "n_bins": n_bins}
    if y.size == 0:
        out.update({"bins": [], "brier": None, "ece": None, "null_reasons": {"brier": "no scores"}})
        return out
    frac_pos, mean_pred = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    binids = np.searchsorted(edges[1:-1], p)  # scikit-learn's rule
    counts = np.bincount(binids, minlength=n_bins)
    nonempty = np.flatnonzero(counts)
    bins = [
        {
            "lo": float(edges[b]),
            "hi": float(edges[b + 1]),
            "n": int(counts[b]),
            "mean_predicted": float(mean_pred[k]),
            "fraction_positive": float(frac_pos[k]),
        }
        for k, b in enumerate(nonempty)
    ]
    ece = float(np.sum(counts[nonempty] / y.size * np.abs(frac_pos - mean_pred)))
    out.update(
        {"bins": bins, "brier": fnum(brier_score_loss(y, p)), "ece": ece, "null_reasons": {}}
    )
    return out
