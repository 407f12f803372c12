"""Decision thresholds: the recorded one, or one chosen on calibration half A; and the
tuned-on-one-half, measured-on-the-other block."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reidbench.metrics import verification as ver
from reidbench.metrics.run.blocks import METRIC_NAMES, block
from reidbench.rundir import SystemView


@dataclass
class Decided:
    """A system's primary answers per pair with its threshold applied (aligned with pairs)."""

    name: str
    kind: str
    scale: float
    score: np.ndarray  # NaN where no score or not answered
    stated_same: np.ndarray
    status: np.ndarray  # "missing" where the system has no primary row
    answered: np.ndarray
    threshold: float | None
    pred: np.ndarray | None  # decisions over all pairs (only meaningful where answered)

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
        )


def decide_or_none(score: np.ndarray, thr: float | None, stated: np.ndarray) -> np.ndarray | None:
    """Decisions at `thr` (stated decisions where no score); None when scores need a threshold."""
    if thr is None and np.isfinite(score).any():
        return None
    return ver.decide(score, thr, stated)


def choose_threshold(
    view: SystemView, y: np.ndarray, s: np.ndarray, calib: np.ndarray
) -> dict[str, Any]:
    """The recorded threshold, or best F1 on calibration half A's answered scored pairs."""
    if view.recorded_threshold is not None:
        return {
            "threshold": view.recorded_threshold,
            "source": view.threshold_source,
            "reason": None,
        }
    use = view.answered & calib & np.isfinite(s)
    t, f1, reason = ver.best_f1_threshold(y[use], s[use])
    return {
        "threshold": t,
        "source": "calibration_best_f1",
        "calibration_pairs": int(use.sum()),
        "calibration_f1": f1,
        "reason": reason,
    }


def tuned_halves(view: Decided, y: np.ndarray, calib: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rule": "threshold tuned by best F1 on one half's answered scored pairs, "
        "every metric measured on the other half's answered pairs",
    }
    halves = {"A": calib, "B": ~calib}
    for key, tune, test in (("a_to_b", "A", "B"), ("b_to_a", "B", "A")):
        tune_mask = view.answered & halves[tune] & np.isfinite(view.score)
        t, f1, reason = ver.best_f1_threshold(y[tune_mask], view.score[tune_mask])
        test_mask = view.answered & halves[test]
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
                "tune_f1": f1,
            }
        )
        if reason:
            b["null_reasons"]["threshold"] = reason
        out[key] = b
    mean: dict[str, Any] = {"null_reasons": {}}
    for m in METRIC_NAMES:
        a, bb = out["a_to_b"].get(m), out["b_to_a"].get(m)
        mean[m] = (a + bb) / 2.0 if a is not None and bb is not None else None
        if mean[m] is None:
            mean["null_reasons"][m] = "undefined in at least one direction"
    out["mean"] = mean
    return out
