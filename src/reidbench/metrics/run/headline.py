"""One system's block of `metrics.json`: threshold, headline metrics on answered pairs with
intervals, and (from the sibling modules) curves, failures, consistency and costs."""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics import verification as ver
from reidbench.metrics.run import curves as cv
from reidbench.metrics.run import failures as fl
from reidbench.metrics.run.blocks import block
from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.metrics.run.consistency import consistency
from reidbench.metrics.run.costs import costs
from reidbench.metrics.run.thresholds import Decided, choose_threshold, decide_or_none, tuned_halves
from reidbench.rundir import Pairs, SystemView, clean_json

THRESHOLD_NOTES = {
    "calibration_best_f1": "chosen by best F1 on calibration half A, then applied to all "
    "answered pairs (half A included, so slightly optimistic; tuned_halves has held-out numbers)",
    "lvlm_default": "run.json records no threshold: the LVLM default 50 on 0-100",
    "recorded": "the threshold recorded in run.json, on the system's own scale",
}


def decided(view: SystemView, y: np.ndarray, calib: np.ndarray) -> tuple[Decided, dict[str, Any]]:
    """The system with its threshold applied, and how the threshold was chosen."""
    answered = view.answered
    score = np.where(answered, view.score, np.nan)
    choice = choose_threshold(view, y, score, calib)
    thr = choice["threshold"]
    stated = view.stated_same
    pred = decide_or_none(score, thr, stated)
    d = Decided(view.name, view.kind, view.scale, score, stated, view.status, answered, thr, pred)
    return d, choice


def system_block(
    view: SystemView,
    pairs: Pairs,
    calib: np.ndarray,
    triplets: np.ndarray,
    boot: Bootstrap,
) -> tuple[dict[str, Any], Decided, dict[str, Any]]:
    """(block for metrics.json, the decided view, failure examples) of one system."""
    y = pairs.label
    d, choice = decided(view, y, calib)
    thr, scale, answered, score, pred = d.threshold, d.scale, d.answered, d.score, d.pred
    out: dict[str, Any] = {
        "type": view.kind,
        "scale": scale,
        "threshold": thr,
        "threshold_normalised": thr / scale if thr is not None else None,
        "threshold_source": choice["source"],
    }
    if choice["source"] == "calibration_best_f1":
        out["threshold_calibration"] = {
            k: choice[k] for k in ("calibration_pairs", "calibration_f1")
        }
    out["threshold_note"] = THRESHOLD_NOTES[choice["source"]]
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
    out["ci"] = boot.ci(ya, sa, pa_)

    out["confusion"] = ver.confusion(ya, pa_) if pa_ is not None else None
    scored = np.isfinite(sa)
    out["distributions"] = cv.distributions(ya[scored], sa[scored], scale)
    out["curves"] = cv.curves(ya[scored], sa[scored], scale)
    out["tuned_halves"] = tuned_halves(d, y, calib)
    out["failures_as_wrong"] = fl.failures_as_wrong(d, y, boot)
    counts, fa, fr = fl.failure_counts(view, d, y)
    out["failures"] = counts
    examples = fl.examples(view, pairs, fa, fr)
    out["consistency"] = consistency(view.rows, d, pairs, triplets)
    out["costs"] = costs(view.rows)
    out["retrieval"] = None
    return out, d, examples
