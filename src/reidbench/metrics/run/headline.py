"""One system's block of `metrics.json`: threshold, headline metrics on answered pairs with
intervals, and (from the sibling modules) curves, failures, consistency and costs."""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics import verification as ver
from reidbench.metrics.run import abstain as ab
from reidbench.metrics.run import curves as cv
from reidbench.metrics.run import failures as fl
from reidbench.metrics.run.blocks import block
from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.metrics.run.consistency import consistency
from reidbench.metrics.run.costs import costs
from reidbench.metrics.run.thresholds import (
    DEFAULT_RULE,
    Decided,
    as_prompted,
    decide_or_none,
    decided,
    tuned_halves,
)
from reidbench.rundir import Pairs, SystemView, clean_json
from reidbench.rundir.halves import Halves

THRESHOLD_NOTES = {
    "crossfit_accuracy": "2-fold cross-fit over the identity-disjoint halves, maximum accuracy: "
    "half B decided at the threshold fitted on half A (shown), half A at the one fitted on B",
    "crossfit_eer": "2-fold cross-fit over the identity-disjoint halves at the EER point: half B "
    "decided at the threshold fitted on half A (shown), half A at the one fitted on B",
    "crossfit_f1": "2-fold cross-fit over the identity-disjoint halves, best F1: half B decided "
    "at the threshold fitted on half A (shown), half A at the one fitted on B",
    "fixed": "fixed in the config (not fitted), on the system's own scale",
    "stated": "no scores: the system's own same/different answers",
    "recorded": "the threshold recorded in run.json, on the system's own scale",
    "lvlm_default": "the LVLM default 50 on 0-100",
    "none": "no threshold",
    "recorded_fallback": "cross-fitting was impossible (see threshold_crossfit): the threshold "
    "recorded in run.json",
}


def system_block(
    view: SystemView,
    pairs: Pairs,
    halves: Halves,
    triplets: np.ndarray,
    boot: Bootstrap,
    *,
    rule: str = DEFAULT_RULE,
    fit: bool = True,
) -> tuple[dict[str, Any], Decided, dict[str, Any]]:
    """(block for metrics.json, the decided view, failure examples) of one system."""
    y = pairs.label
    d, choice = decided(view, y, halves, rule, fit=fit)
    thr, scale, answered, score, pred = d.threshold, d.scale, d.answered, d.score, d.pred
    out: dict[str, Any] = {
        "type": view.kind,
        "scale": scale,
        "threshold": thr,
        "threshold_normalised": thr / scale if thr is not None else None,
        "threshold_source": choice["source"],
    }
    if "crossfit" in choice:
        out["threshold_crossfit"] = choice["crossfit"]
        out["threshold_rule"] = rule
    out["threshold_note"] = THRESHOLD_NOTES.get(choice["source"], choice["source"])
    out["info"] = clean_json(view.entry)

    ya, sa = y[answered], score[answered]
    pa_ = pred[answered] if pred is not None else None
    n_answered = int(answered.sum())
    out.update(
        {
            "n_pairs": pairs.n,
            "n_answered": n_answered,
            "n_scored": int(np.isfinite(sa).sum()),
            "n_decision_only": int((~np.isfinite(sa)).sum()),
            "coverage": n_answered / pairs.n if pairs.n else None,
        }
    )
    head = block(ya, sa, pa_, no_pred_reason=choice["reason"] or "no decision threshold")
    head.pop("n")
    reasons = head.pop("null_reasons")
    if pairs.n == 0:
        reasons["coverage"] = "the pair set is empty"
    if thr is None and choice["reason"]:
        reasons["threshold"] = choice["reason"]
    out.update(head)
    out["null_reasons"] = reasons
    out["ci"] = boot.ci(ya, sa, pa_, at=answered)

    out["confusion"] = ver.confusion(ya, pa_) if pa_ is not None else None
    scored = np.isfinite(sa)
    out["distributions"] = cv.distributions(ya[scored], sa[scored], scale)
    out["curves"] = cv.curves(ya[scored], sa[scored], scale)
    out["tuned_halves"] = tuned_halves(d, y, halves, rule)
    prompted = as_prompted(view, d, y)
    if prompted is not None:
        p_pred = decide_or_none(score, view.recorded_threshold, d.stated_same)
        p_ans = None if p_pred is None else p_pred[answered]
        prompted["ci"] = boot.ci(ya, sa, p_ans, at=answered)["intervals"]
        out["as_prompted"] = prompted
    out["failures_as_wrong"] = fl.failures_as_wrong(d, y, boot)
    out["failures_as_wrong"]["bound"] = ab.PESSIMISTIC
    out["answered_only_bound"] = ab.OPTIMISTIC
    out["coverage_aware"] = ab.coverage_aware_block(d, y, boot)
    out["risk_coverage"] = ab.risk_coverage_block(d, y)
    counts, fa, fr = fl.failure_counts(view, d, y)
    out["failures"] = counts
    examples = fl.examples(view, pairs, fa, fr)
    out["consistency"] = consistency(view.rows, d, pairs, triplets)
    out["costs"] = costs(view.rows)
    out["retrieval"] = None
    return out, d, examples
