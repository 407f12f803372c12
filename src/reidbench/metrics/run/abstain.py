"""No reward for refusing (issue #9 item 3): the coverage-aware block, the risk-coverage
curve and the coverage-aware paired test of the systems in `metrics.json`.

Answered-only metrics (the system block's headline) are the optimistic bound: a system
that refuses the pairs it finds hard looks better. Failures-as-wrong is the pessimistic
bound: every abstention is wrong and ranks last. The coverage-aware values count an
abstention at its expected value as a coin flip (`reidbench.metrics.coverage`), so
refusing can never raise them; they drive the report's highlights and paired tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics.coverage import coverage_aware_metrics, risk_coverage
from reidbench.metrics.run.blocks import pair_ids_digest
from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.metrics.run.thresholds import Decided
from reidbench.metrics.specs import keys

OPTIMISTIC = (
    "optimistic bound: answered pairs only (a system that abstains on hard pairs looks better)"
)
PESSIMISTIC = "pessimistic bound: every abstention is a wrong decision and ranks as the worst score"
HEADLINE = (
    "headline: every pair the system was meant to answer counts; an abstention (refusal, "
    "safety block, parse or API error, not asked) is a coin flip: 0.5 correct, and tied with "
    "the other class in the ranking metrics"
)
NO_SCORES = "no scores: the system gave decisions only (ranking metrics undefined)"
# Points kept in metrics.json per risk-coverage curve; the AURC uses every pair.
CURVE_POINTS = 200


def coverage_aware_block(d: Decided, y: np.ndarray, boot: Bootstrap) -> dict[str, Any]:
    """Coverage-aware metrics of one system over all its pairs, with intervals."""
    out = coverage_aware_metrics(y, d.score, d.pred, d.answered)
    out["bound"] = HEADLINE
    ci = boot.coverage_ci(y, d.score, d.pred, d.answered)
    out["ci"] = ci
    if not np.isfinite(d.score).any():  # decisions only: every pair would tie (AUC 0.5)
        for k in keys("ranking", coverage=True, builtin=True):
            out[k] = None
            out["null_reasons"][k] = NO_SCORES
            ci["intervals"][k] = None
            ci["null_reasons"][k] = NO_SCORES
    return out


def confidence(d: Decided) -> np.ndarray:
    """Distance of each score from the threshold that decided its pair (cross-fitted
    thresholds differ between halves); -inf where no score (ranked after scored pairs)."""
    s = np.asarray(d.score, dtype=np.float64)
    if d.pair_threshold is not None:
        t = np.asarray(d.pair_threshold, dtype=np.float64)
    elif d.threshold is not None:
        t = np.full(s.size, float(d.threshold))
    else:
        return np.full(s.size, -np.inf)
    ok = np.isfinite(s) & np.isfinite(t)
    return np.where(ok, np.abs(np.where(ok, s - t, 0.0)), -np.inf)


def _thin(values: list[Any], keep: np.ndarray) -> list[Any]:
    return [values[i] for i in keep]


def risk_coverage_block(d: Decided, y: np.ndarray) -> dict[str, Any]:
    """Risk-coverage curve (confidence = distance from the threshold) and its AURC."""
    if d.pred is None:
        return {
            "aurc": None,
            "coverage": [],
            "risk": [],
            "null_reasons": {"aurc": "no decision threshold"},
        }
    out = risk_coverage(y, d.pred, confidence(d), d.answered)
    n_pts = len(out["coverage"])
    if n_pts > CURVE_POINTS:
        keep = np.unique(np.linspace(0, n_pts - 1, CURVE_POINTS).round().astype(int))
        out["coverage"] = _thin(out["coverage"], keep)
        out["risk"] = _thin(out["risk"], keep)
        out["thinned_from"] = n_pts
    out["confidence"] = "|score - threshold| on the system's own scale; answers without a "
    out["confidence"] += "score last; abstentions after them at risk 0.5 (coin flip)"
    out["null_reasons"] = {} if out["aurc"] is not None else {"aurc": "no pairs"}
    return out


def meant_to_answer(a: Decided, b: Decided) -> np.ndarray:
    """Pairs both systems were meant to answer (a subset system's other pairs are not
    abstentions: it was never asked them)."""
    return (a.status != "not_evaluated") & (b.status != "not_evaluated")


def coverage_aware_compare(
    a: Decided,
    b: Decided,
    y: np.ndarray,
    boot: Bootstrap,
    ids: np.ndarray,
    *,
    within: np.ndarray | None = None,
) -> dict[str, Any]:
    """Paired tests of A against B on the coverage-aware values of identical pairs: every
    pair both were meant to answer, abstentions of either counted as coin flips."""
    m = meant_to_answer(a, b)
    if within is not None:
        m = m & within

    def side(v: Decided) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        return v.score[m], None if v.pred is None else v.pred[m], v.answered[m]

    out = boot.coverage_paired(y[m], side(a), side(b), at=m)
    if not (np.isfinite(a.score[m]).any() and np.isfinite(b.score[m]).any()):
        out["auc"] = None
        out["null_reasons"]["auc"] = NO_SCORES
    out["pair_ids_sha256"] = pair_ids_digest(ids[m])
    out["rule"] = HEADLINE
    return out
