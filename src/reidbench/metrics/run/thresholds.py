"""Decision thresholds, out of sample and alike for every system (issue #9 item 4).

Every system's threshold is chosen by the same rule (default: maximum accuracy; EER and
best F1 are options) by 2-fold cross-fitting over the identity-disjoint halves: the
threshold fitted on half A decides the pairs of half B and vice versa, so no pair is
decided by a threshold that saw it or its identities. A pair across the halves (a
negative whose two people fall in different halves) is used by neither fit and is
decided at the mean of the two thresholds. A threshold the user fixed in the config wins
and is labelled "fixed". LVLMs also keep an "as prompted" block (their recorded threshold,
50 on 0-100, or their stated yes/no) for the study's setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_curve

from reidbench.metrics import verification as ver
from reidbench.metrics.run.blocks import block, metric_names
from reidbench.rundir import SystemView
from reidbench.rundir.halves import Halves

RULES = ("accuracy", "eer", "f1")
DEFAULT_RULE = "accuracy"
RULE_TEXT = {
    "accuracy": "maximum accuracy",
    "eer": "equal error rate (FPR = FNR)",
    "f1": "best F1",
}


@dataclass
class Decided:
    """A system's primary answers per pair with its thresholds applied (aligned with pairs)."""

    name: str
    kind: str
    scale: float
    score: np.ndarray  # NaN where no score or not answered
    stated_same: np.ndarray
    status: np.ndarray  # "missing" where the system has no primary row
    answered: np.ndarray
    threshold: float | None  # the one reported (fixed, or fitted on half A)
    pred: np.ndarray | None  # decisions over all pairs (only meaningful where answered)
    pair_threshold: np.ndarray | None = None  # the threshold that decided each pair

    def take(self, mask: np.ndarray) -> Decided:
        return Decided(
            self.name,
            self.kind,
            self.scale,
            self.score[mask],
            self.stated_same[mask],
            self.status[mask],
            self.answered[mask],
            self.threshold,
            None if self.pred is None else self.pred[mask],
            None if self.pair_threshold is None else self.pair_threshold[mask],
        )

    def expand(self, keep: np.ndarray, n: int) -> Decided:
        """A subset's view laid over all n pairs: pairs outside the subset are not answered."""

        def full(values: np.ndarray, fill: Any) -> np.ndarray:
            out = np.full(n, fill, dtype=values.dtype)
            out[keep] = values
            return out

        return Decided(
            self.name,
            self.kind,
            self.scale,
            full(self.score, np.nan),
            full(self.stated_same, False),
            full(self.status, "not_evaluated"),
            full(self.answered, False),
            self.threshold,
            None if self.pred is None else full(self.pred, False),
            None if self.pair_threshold is None else full(self.pair_threshold, np.nan),
        )

    def decide_rows(self, score: np.ndarray, stated: np.ndarray, row: np.ndarray) -> Any:
        """Decisions for other rows (orders, repeats) of pairs `row`, at each pair's threshold."""
        if self.pair_threshold is None:
            return decide_or_none(score, self.threshold, stated)
        thr = self.pair_threshold[row]
        with np.errstate(invalid="ignore"):
            by_score = score >= thr
        return np.where(np.isfinite(score), by_score, stated)


def decide_or_none(score: np.ndarray, thr: float | None, stated: np.ndarray) -> np.ndarray | None:
    """Decisions at `thr` (stated decisions where no score); None when scores need a threshold."""
    if thr is None and np.isfinite(score).any():
        return None
    return ver.decide(score, thr, stated)


# --- the rules -------------------------------------------------------------------------


def _midpoint(cand: np.ndarray, best: int) -> float:
    """Between the winning score and the next lower distinct one (`cand` descending), so
    the winning score is still accepted; the lowest candidate is returned as is."""
    t = float(cand[best])
    return float((cand[best] + cand[best + 1]) / 2.0) if best + 1 < cand.size else t


def best_accuracy_threshold(
    y_true: np.ndarray, scores: np.ndarray
) -> tuple[float | None, float | None, str | None]:
    """The threshold with the highest accuracy (same when score >= t); ties: fewest accepts.

    Candidates are the distinct scores; the returned threshold is the midpoint between the
    winning score and the next lower distinct score (it decides these pairs identically).
    Hand-written: scikit-learn has no accuracy-optimal threshold; this is two cumsums over
    the ROC counts.
    """
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if y.size == 0:
        return None, None, "no scored pairs to tune on"
    if y.sum() == 0 or y.sum() == y.size:
        return None, None, "the pairs to tune on hold one label only"
    cand, inv = np.unique(-s, return_inverse=True)  # descending scores
    pos = np.bincount(inv, weights=y, minlength=cand.size)
    neg = np.bincount(inv, weights=1 - y, minlength=cand.size)
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    acc = (tp + (neg.sum() - fp)) / y.size
    best = int(np.flatnonzero(np.isclose(acc, acc.max(), rtol=1e-12, atol=0.0))[0])
    return _midpoint(-cand, best), float(acc[best]), None


def eer_threshold(
    y_true: np.ndarray, scores: np.ndarray
) -> tuple[float | None, float | None, str | None]:
    """The ROC point where FPR and FNR are closest (the EER operating point)."""
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if y.size == 0:
        return None, None, "no scored pairs to tune on"
    if y.sum() == 0 or y.sum() == y.size:
        return None, None, "the pairs to tune on hold one label only"
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    gap = np.abs(fpr - (1.0 - tpr))[1:]  # index 0 is the (inf) accept-nothing point
    best = int(np.argmin(gap)) + 1
    cand = thr[1:]
    t = _midpoint(cand[np.isfinite(cand)], best - 1)
    return t, float((fpr[best] + 1.0 - tpr[best]) / 2.0), None


def fit_threshold(
    y: np.ndarray, s: np.ndarray, rule: str
) -> tuple[float | None, float | None, str | None]:
    """(threshold, value of the rule's criterion, reason when None)."""
    if rule == "f1":
        return ver.best_f1_threshold(y, s)
    if rule == "eer":
        return eer_threshold(y, s)
    return best_accuracy_threshold(y, s)


# --- choosing a system's thresholds ----------------------------------------------------


def is_fixed(view: SystemView) -> bool:
    """A threshold the user set in the config (embedders: any recorded; LVLMs: flagged)."""
    if view.recorded_threshold is None:
        return False
    if view.kind == "lvlm":
        return bool(view.entry.get("threshold_fixed", False))
    return True


def cross_fit(
    view: SystemView, y: np.ndarray, s: np.ndarray, halves: Halves, rule: str
) -> dict[str, Any]:
    """Thresholds fitted on each half (answered scored pairs) and the per-pair threshold."""
    fits: dict[str, Any] = {}
    for key, mask in (("A", halves.a), ("B", halves.b)):
        use = view.answered & mask & np.isfinite(s)
        t, value, reason = fit_threshold(y[use], s[use], rule)
        fits[key] = {"threshold": t, "criterion": value, "n": int(use.sum()), "reason": reason}
    ta, tb = fits["A"]["threshold"], fits["B"]["threshold"]
    out: dict[str, Any] = {"fits": fits, "pair_threshold": None, "reason": None}
    if ta is None or tb is None:
        out["reason"] = "cross-fitting needs a threshold from each half: " + str(
            fits["A"]["reason"] or fits["B"]["reason"]
        )
        return out
    thr = np.full(y.size, (ta + tb) / 2.0)
    thr[halves.a] = tb  # half A decided by the threshold fitted on half B
    thr[halves.b] = ta
    out["pair_threshold"] = thr
    return out


def decided(
    view: SystemView, y: np.ndarray, halves: Halves, rule: str = DEFAULT_RULE, *, fit: bool = True
) -> tuple[Decided, dict[str, Any]]:
    """The system with its thresholds applied, and how they were chosen.

    `fit=False` (systems evaluated on a subset: fused systems, a live cascade's LVLM) uses
    the recorded threshold: those were fitted, or asked, on half A already.
    """
    answered = view.answered
    score = np.where(answered, view.score, np.nan)
    stated = view.stated_same
    scored = np.isfinite(score).any()
    info: dict[str, Any] = {"rule": rule, "reason": None}
    pair_thr = None
    if not fit or is_fixed(view):
        thr = view.recorded_threshold
        info["source"] = "fixed" if fit else (view.threshold_source if thr is not None else "none")
        if thr is None and scored:
            info["reason"] = "no recorded threshold"
    elif not scored:
        thr = None
        info["source"] = "stated"  # decision-only answers: the system's own yes/no
    else:
        cf = cross_fit(view, y, score, halves, rule)
        info["source"] = f"crossfit_{rule}"
        info["crossfit"] = cf["fits"]
        info["reason"] = cf["reason"]
        pair_thr = cf["pair_threshold"]
        thr = cf["fits"]["A"]["threshold"] if pair_thr is not None else None
        if pair_thr is None and view.recorded_threshold is not None:
            thr = view.recorded_threshold  # e.g. one label only: the LVLM's own threshold
            info["source"] = "recorded_fallback"
    pred: np.ndarray | None
    if pair_thr is not None:
        with np.errstate(invalid="ignore"):
            pred = np.where(np.isfinite(score), score >= pair_thr, stated)
    else:
        pred = decide_or_none(score, thr, stated)
    d = Decided(
        view.name, view.kind, view.scale, score, stated, view.status, answered, thr, pred, pair_thr
    )
    return d, info


def as_prompted(view: SystemView, d: Decided, y: np.ndarray) -> dict[str, Any] | None:
    """An LVLM at its own threshold (recorded, default 50) or its own yes/no, answered pairs."""
    if view.kind != "lvlm":
        return None
    thr = view.recorded_threshold
    pred = decide_or_none(d.score, thr, d.stated_same)
    m = d.answered
    out = block(y[m], d.score[m], None if pred is None else pred[m])
    out["threshold"] = thr
    out["rule"] = (
        "the LVLM's own setting: score >= its recorded threshold (50 on 0-100 unless set), "
        "or its stated same/different where it gave no score"
    )
    return out


def tuned_halves(view: Decided, y: np.ndarray, halves: Halves, rule: str) -> dict[str, Any]:
    """Each direction of the cross-fit on its own: tuned on one half, measured on the other."""
    out: dict[str, Any] = {
        "rule": f"threshold tuned by {RULE_TEXT[rule]} on one half's answered scored pairs, "
        "every metric measured on the other half's answered pairs (identity-disjoint halves)",
    }
    named = {"A": halves.a, "B": halves.b}
    for key, tune, test in (("a_to_b", "A", "B"), ("b_to_a", "B", "A")):
        tune_mask = view.answered & named[tune] & np.isfinite(view.score)
        t, crit, reason = fit_threshold(y[tune_mask], view.score[tune_mask], rule)
        test_mask = view.answered & named[test]
        pred = decide_or_none(view.score[test_mask], t, view.stated_same[test_mask])
        b = block(
            y[test_mask], view.score[test_mask], pred, no_pred_reason=reason or "no threshold"
        )
        b.update(
            {
                "tuned_on": tune,
                "measured_on": test,
                "threshold": t,
                "n_tune": int(tune_mask.sum()),
                "tune_criterion": crit,
            }
        )
        if reason:
            b["null_reasons"]["threshold"] = reason
        out[key] = b
    mean: dict[str, Any] = {"null_reasons": {}}
    for m in metric_names():
        a, bb = out["a_to_b"].get(m), out["b_to_a"].get(m)
        mean[m] = (a + bb) / 2.0 if a is not None and bb is not None else None
        if mean[m] is None:
            mean["null_reasons"][m] = "undefined in at least one direction"
    out["mean"] = mean
    return out
