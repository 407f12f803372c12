"""Score distributions, ROC / PR curves and calibration bins of one system."""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics import verification as ver


def distributions(ys: np.ndarray, ss: np.ndarray, scale: float) -> dict[str, Any]:
    return ver.score_distributions(ys, ss, scale)


def curves(ys: np.ndarray, ss: np.ndarray, scale: float) -> dict[str, Any]:
    """ROC and PR curves (both classes needed) and calibration bins on score / scale."""
    two_classes = ys.size > 0 and 0 < ys.sum() < ys.size
    return {
        "roc": ver.roc_curve_json(ys, ss) if two_classes else None,
        "pr": ver.pr_curve_json(ys, ss) if two_classes else None,
        "calibration": ver.calibration_bins(ys, ss / scale),
        "null_reasons": {} if two_classes else {"roc": "needs both classes among scored pairs"},
    }
