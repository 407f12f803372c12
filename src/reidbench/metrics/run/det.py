"""DET curves (FNR against FAR; the biometrics convention for verification, issue #15).

Points from `sklearn.metrics.det_curve` on each system's scored answers, with the
system's operating point at its cross-fitted thresholds. The report draws FAR on a log
axis, so a curve's FAR = 0 points cannot be shown; they are kept here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import det_curve

from reidbench.metrics._util import fnum, fnums
from reidbench.metrics.run.thresholds import Decided

MAX_POINTS = 400
RULE = (
    "sklearn.metrics.det_curve on the pairs the system answered with a score: FAR = false "
    "accepts / different-person pairs, FNR = false rejects / same-person pairs, per threshold"
)


def det_block(d: Decided, y: np.ndarray) -> dict[str, Any]:
    """DET points of one system (thinned to MAX_POINTS) and its operating point."""
    m = d.answered & np.isfinite(d.score)
    ys, ss = y[m], d.score[m]
    out: dict[str, Any] = {"n_same": int(ys.sum()), "n_different": int(ys.size - ys.sum())}
    if out["n_same"] == 0 or out["n_different"] == 0:
        out["null_reason"] = "needs both classes among scored pairs"
        return out
    far, fnr, thr = det_curve(ys, ss)
    if far.size > MAX_POINTS:
        keep = np.unique(np.linspace(0, far.size - 1, MAX_POINTS).round().astype(int))
        far, fnr, thr = far[keep], fnr[keep], thr[keep]
        out["thinned"] = True
    out.update({"far": fnums(far), "fnr": fnums(fnr), "thresholds": fnums(thr)})
    if d.pred is not None:
        p = np.asarray(d.pred, dtype=bool)[m]
        out["operating_point"] = {
            "far": fnum(np.sum(p & (ys == 0)) / out["n_different"]),
            "fnr": fnum(np.sum(~p & (ys == 1)) / out["n_same"]),
        }
    return out


def det_curves(views: list[Decided], y: np.ndarray) -> dict[str, Any]:
    return {
        "rule": RULE,
        "systems": {v.name: det_block(v, y) for v in views if v.score.size == y.size},
    }
