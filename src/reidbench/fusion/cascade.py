"""Cost-aware cascade: the ReID model decides every pair outside an uncertainty band, the LVLM
decides the pairs inside it.

Rules (docs/fusion.md has the full text; every record repeats them):
- ReID threshold `t`: the one recorded in run.json, else best F1 on calibration half A
  (the same rule as the metrics stage, so the cascade's ReID side decides exactly as the
  ReID system's own metrics do).
- Uncertainty of a pair: `|s - t|`, its ReID score's distance to the threshold. The ReID
  probability is `sigmoid(a * (s - t))` with the slope `a` fitted by a one-feature logistic
  regression without intercept on the calibration pairs, so `p = 0.5` exactly at `t` and
  "closest to the threshold" is also "calibrated probability closest to 0.5".
- Band for a target fraction `f`: the `round(f * n)` calibration pairs with the smallest
  `|s - t|` fix the half-width `w` (the largest of their distances); the band is
  `[t - w, t + w]`. It is learnt from ReID scores of calibration pairs only (no LVLM answer
  and no label is needed), then applied unchanged to held-out pairs. Bands of smaller `f`
  lie inside bands of larger `f`.
- Inside the band the LVLM decides: its score mapped to [0, 1] piecewise-linearly so that
  its own threshold lands on 0.5 (`score / 100` for the default threshold 50); a stated
  decision without a score counts as 1 or 0. An LVLM failure (refusal, parse error, API
  error, ...) falls back to the ReID probability and decision, and is counted.
- The cascade's continuous score (for AUC) is that mixed [0, 1] value; its decision is
  `score >= 0.5`, i.e. the ReID decision outside the band and the LVLM's inside.
- Cost: the LVLM's USD of the pairs sent, per 1,000 pairs of the evaluated half.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from reidbench.errors import UserError
from reidbench.metrics._util import fnum
from reidbench.metrics.verification import best_f1_threshold, ranking_metrics, threshold_metrics
from reidbench.rundir import RunDir, SystemView

BILLED = ("ok", "refusal", "safety_block", "parse_error")  # statuses that come with usage

RULES = {
    "reid_threshold": "recorded in run.json, else best F1 on calibration half A",
    "uncertainty": "|s - t|: the ReID score's distance to its threshold (equivalently, the "
    "ReID probability sigmoid(a * (s - t)) closest to 0.5)",
    "band": "for a target fraction f, the round(f * n) calibration pairs with the smallest "
    "|s - t| set the half-width w; band = [t - w, t + w], applied unchanged to held-out pairs",
    "inside": "the LVLM decides; its score is mapped piecewise-linearly to [0, 1] with its "
    "threshold at 0.5; a stated decision without a score is 1 or 0",
    "lvlm_failure": "an LVLM failure inside the band falls back to the ReID probability and "
    "decision (counted as lvlm_failed)",
    "not_asked": "a pair inside the band the LVLM was never asked about (a live run's budget "
    "ran out, or the LVLM has no row for it) is decided by the ReID model (counted)",
    "score": "outside the band: the ReID probability; inside: the LVLM's mapped score",
    "decision": "score >= 0.5",
    "cost": "USD of the LVLM answers for the pairs sent; usd_per_1000_pairs divides by the "
    "number of pairs evaluated",
}


@dataclass(frozen=True)
class ReidCalibration:
    """The ReID side of the cascade: threshold and probability slope, from calibration pairs."""

    threshold: float
    source: str  # recorded | calibration_best_f1
    calibration_f1: float | None
    slope: float
    n_calibration: int

    def prob(self, score: np.ndarray) -> np.ndarray:
        s = np.asarray(score, dtype=np.float64)
        return np.where(np.isfinite(s), expit(self.slope * (s - self.threshold)), 0.5)

    def distance(self, score: np.ndarray) -> np.ndarray:
        """|s - t|; a pair without a ReID score is maximally uncertain (distance 0)."""
        s = np.asarray(score, dtype=np.float64)
        return np.where(np.isfinite(s), np.abs(s - self.threshold), 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "threshold_source": self.source,
            "calibration_f1": self.calibration_f1,
            "slope": self.slope,
            "probability": "sigmoid(slope * (score - threshold))",
            "calibration_pairs": self.n_calibration,
        }


def calibrate_reid(view: SystemView, label: np.ndarray, calib: np.ndarray) -> ReidCalibration:
    """Threshold and probability slope of the ReID system, from its calibration pairs only."""
    use = calib & view.answered & np.isfinite(view.score)
    s, y = view.score[use], np.asarray(label)[use].astype(np.int64)
    if y.size == 0 or y.min() == y.max():
        raise UserError(
            f"system {view.name!r}: its calibration pairs do not hold both labels; "
            "the cascade cannot learn a band (curate more pairs)"
        )
    f1: float | None
    if view.recorded_threshold is not None:
        t, f1, source = view.recorded_threshold, None, "recorded"
    else:
        best, f1, reason = best_f1_threshold(y, s)
        if best is None:
            raise UserError(f"system {view.name!r}: cannot choose a threshold ({reason})")
        t, source = best, "calibration_best_f1"
    x = s - t
    sd = float(x.std()) or 1.0
    fit = LogisticRegression(C=np.inf, fit_intercept=False).fit((x / sd)[:, None], y)
    slope = float(fit.coef_.ravel()[0]) / sd
    if not slope > 0:
        raise UserError(
            f"system {view.name!r}: higher scores do not mean 'same person' on the calibration "
            "pairs (fitted slope <= 0); it cannot drive a cascade"
        )
    return ReidCalibration(float(t), source, f1, slope, int(y.size))


def band_halfwidth(distance_cal: np.ndarray, fraction: float) -> float:
    """Half-width w so that |s - t| <= w holds for round(fraction * n) calibration pairs.

    -inf (an empty band) for fraction 0 and +inf (every pair) for fraction 1; ties at w
    are all inside, so the band may hold a few more pairs than the target.
    """
    d = np.sort(np.asarray(distance_cal, dtype=np.float64))
    k = round(float(fraction) * d.size)
    if k <= 0:
        return -math.inf
    if k >= d.size:
        return math.inf
    return float(d[k - 1])


def unit_scores(
    score: np.ndarray,
    decision: np.ndarray,
    answered: np.ndarray,
    threshold: float,
    scale: float,
) -> np.ndarray:
    """LVLM scores on [0, 1] with the threshold at 0.5, piecewise-linear (NaN: no answer).

    With the default threshold 50 on 0-100 this is score / 100. A stated decision
    without a score counts as 1 ("same") or 0.
    """
    s = np.asarray(score, dtype=np.float64)
    t = min(max(float(threshold), 0.0), float(scale))
    with np.errstate(invalid="ignore", divide="ignore"):
        low = 0.5 * s / t if t > 0 else np.full_like(s, 0.5)
        high = 0.5 + 0.5 * (s - t) / (scale - t) if scale > t else np.full_like(s, 1.0)
        unit = np.clip(np.where(s < t, low, high), 0.0, 1.0)
    stated = np.where(np.asarray(decision) == "same", 1.0, 0.0)
    unit = np.where(np.isfinite(s), unit, stated)
    return np.where(np.asarray(answered, dtype=bool), unit, np.nan)


def lvlm_unit(view: SystemView, threshold: float) -> np.ndarray:
    """`unit_scores` of a system's primary answers."""
    return unit_scores(view.score, view.decision, view.answered, threshold, view.scale)


@dataclass
class CascadeOutputs:
    """The cascade's answer for every pair of the run at one band half-width."""

    halfwidth: float
    score: np.ndarray
    same: np.ndarray
    in_band: np.ndarray
    sent: np.ndarray  # in the band and asked (the LVLM has a row that is not a budget stop)
    lvlm_decided: np.ndarray
    lvlm_failed: np.ndarray
    not_asked: np.ndarray
    cost: np.ndarray  # USD per pair (0 where not sent; NaN where sent and unknown)
    tokens_in: np.ndarray
    tokens_out: np.ndarray


@dataclass
class CascadeInputs:
    reid: ReidCalibration
    reid_prob: np.ndarray
    distance: np.ndarray
    lvlm: SystemView
    lvlm_threshold: float
    lvlm_unit: np.ndarray

    def outputs(self, halfwidth: float) -> CascadeOutputs:
        lv = self.lvlm
        in_band = self.distance <= halfwidth
        asked = lv.has_row & (lv.status != "budget_exceeded")
        sent = in_band & asked
        decided = sent & lv.answered
        failed = sent & ~lv.answered
        score = np.where(decided, self.lvlm_unit, self.reid_prob)
        billed = np.isin(lv.status, BILLED)
        cost = np.where(sent, np.where(billed, lv.cost, np.nan_to_num(lv.cost)), 0.0)
        return CascadeOutputs(
            halfwidth=halfwidth,
            score=score,
            same=score >= 0.5,
            in_band=in_band,
            sent=sent,
            lvlm_decided=decided,
            lvlm_failed=failed,
            not_asked=in_band & ~asked,
            cost=cost,
            tokens_in=np.where(sent, lv.tokens_in, 0),
            tokens_out=np.where(sent, lv.tokens_out, 0),
        )


def cascade_inputs(data: RunDir, reid: str, lvlm: str, calib: np.ndarray) -> CascadeInputs:
    rv, lv = data.system(reid), data.system(lvlm)
    if rv.kind != "reid":
        raise UserError(f"cascade: {reid!r} is a {rv.kind} system; the first must be a ReID model")
    if lv.kind != "lvlm":
        raise UserError(f"cascade: {lvlm!r} is a {lv.kind} system; the second must be an LVLM")
    cal = calibrate_reid(rv, data.label, calib)
    lvlm_thr = lv.recorded_threshold if lv.recorded_threshold is not None else lv.scale / 2
    return CascadeInputs(
        reid=cal,
        reid_prob=cal.prob(rv.score),
        distance=cal.distance(rv.score),
        lvlm=lv,
        lvlm_threshold=float(lvlm_thr),
        lvlm_unit=lvlm_unit(lv, lvlm_thr),
    )


def _edge(x: float) -> float | None:
    return x if math.isfinite(x) else None


MIXED_SCALES = (
    "not reported: the cascade's score is the ReID model's calibrated probability on some "
    "pairs and the LVLM's unit score on others, two scales one ranking cannot mix"
)


def curve_point(
    out: CascadeOutputs, y: np.ndarray, rows: np.ndarray, target: float | None, t: float
) -> dict[str, Any]:
    """Fraction sent, F1, AUC, USD per 1,000 pairs, ... of the cascade over `rows`."""
    y_r = np.asarray(y)[rows].astype(np.int64)
    n = int(y_r.size)
    sent = out.sent[rows]
    cost = out.cost[rows]
    unknown = int(np.isnan(cost).sum())
    usd = float(np.nansum(cost)) if unknown == 0 else None
    tm = threshold_metrics(y_r, out.same[rows])
    rm = ranking_metrics(y_r, out.score[rows])
    w = out.halfwidth
    point: dict[str, Any] = {
        "fraction_target": target,
        "halfwidth": _edge(w),
        "band_lo": _edge(t - w) if w >= 0 else None,
        "band_hi": _edge(t + w) if w >= 0 else None,
        "band_empty": not w >= 0,
        "n": n,
        "n_in_band": int(out.in_band[rows].sum()),
        "n_sent": int(sent.sum()),
        "fraction_sent": fnum(sent.mean()) if n else None,
        "n_lvlm_decided": int(out.lvlm_decided[rows].sum()),
        "n_lvlm_failed": int(out.lvlm_failed[rows].sum()),
        "n_not_asked": int(out.not_asked[rows].sum()),
        "accuracy": tm["accuracy"],
        "precision": tm["precision"],
        "recall": tm["recall"],
        "f1": tm["f1"],
        "auc": rm["auc"],
        "usd": usd,
        "usd_per_1000_pairs": usd / n * 1000.0 if usd is not None and n else None,
        "tokens_in": int(out.tokens_in[rows].sum()),
        "tokens_out": int(out.tokens_out[rows].sum()),
        "null_reasons": {**tm["null_reasons"], **rm["null_reasons"]},
    }
    if usd is None:
        point["null_reasons"]["usd"] = f"{unknown} sent pairs have no recorded cost (no price)"
    if 0 < point["n_sent"] < n:  # issue #9 item 7: no AUC over a mix of two score scales
        point["auc"] = None
        point["null_reasons"]["auc"] = MIXED_SCALES
    return point


def choose_operating_point(
    calibration_curve: list[dict[str, Any]], budget: float | None
) -> tuple[int, str]:
    """Index of the best calibration F1 within the budget (ties: the cheaper point)."""
    best, best_key = None, None
    for i, p in enumerate(calibration_curve):
        cost = p["usd_per_1000_pairs"]
        if budget is not None and (cost is None or cost > budget):
            continue
        key = (p["f1"] if p["f1"] is not None else -1.0, -(p["fraction_sent"] or 0.0))
        if best_key is None or key > best_key:
            best, best_key = i, key
    if best is None:
        raise UserError(
            f"no cascade point fits the budget of {budget} USD per 1,000 pairs (costs unknown: "
            "set the LVLM's prices); raise the budget or pass a fraction"
        )
    rule = (
        "best F1 on calibration half A among points costing at most "
        f"{budget} USD per 1,000 calibration pairs"
        if budget is not None
        else "best F1 on calibration half A (no budget given)"
    )
    return best, rule


@dataclass
class CascadeFusion:
    inputs: CascadeInputs
    operating: CascadeOutputs
    calib: np.ndarray
    record_body: dict[str, Any]


def fuse_cascade(
    data: RunDir,
    reid: str,
    lvlm: str,
    *,
    fractions: list[float],
    fraction: float | None = None,
    budget_usd_per_1k: float | None = None,
    live: bool = False,
    calib: np.ndarray | None = None,
) -> CascadeFusion:
    """The cascade's curve over `fractions` and its operating point, evaluated on held-out pairs.

    Offline (`live=False`, the LVLM answered every pair): the operating point is
    `fraction` if given, else the best calibration F1 within `budget_usd_per_1k`.
    Live (the LVLM was asked only about held-out pairs inside the band): the operating
    point is the band the run used, and the curve stops there.
    """
    calib = data.calibration() if calib is None else np.asarray(calib, dtype=bool)
    inputs = cascade_inputs(data, reid, lvlm, calib)
    held = np.flatnonzero(data.held_out(calib))
    cal_rows = np.flatnonzero(calib)
    t = inputs.reid.threshold
    d_cal = inputs.distance[calib]
    targets = [*fractions, *([fraction] if fraction is not None else [])]
    grid = sorted({round(float(f), 6) for f in targets})
    widths = [band_halfwidth(d_cal, f) for f in grid]
    y = data.label
    body: dict[str, Any] = {
        "reid": reid,
        "lvlm": lvlm,
        "mode": "live" if live else "offline",
        "rules": RULES,
        "reid_side": inputs.reid.to_json(),
        "lvlm_threshold": inputs.lvlm_threshold,
        "lvlm_scale": inputs.lvlm.scale,
        "fractions": grid,
        "budget_usd_per_1k": budget_usd_per_1k,
    }
    if live:
        op_w = _live_halfwidth(inputs, held, data, fraction, calib)
        keep = [(f, w) for f, w in zip(grid, widths, strict=True) if w <= op_w]
        body["curve"] = [curve_point(inputs.outputs(w), y, held, f, t) for f, w in keep]
        body["curve_note"] = (
            "live run: the LVLM was asked only about held-out pairs inside the band, so the "
            "curve covers bands up to the operating point"
        )
        body["curve_calibration"] = None
        operating = inputs.outputs(op_w)
        body["operating_point"] = {
            **curve_point(operating, y, held, fraction, t),
            "rule": "the band this live run used"
            + (f" (fraction {fraction})" if fraction is not None else "")
            + (
                f", cut by the budget of {budget_usd_per_1k} USD per 1,000 held-out pairs"
                if budget_usd_per_1k is not None
                else ""
            ),
        }
    else:
        outs = [inputs.outputs(w) for w in widths]
        body["curve"] = [curve_point(o, y, held, f, t) for o, f in zip(outs, grid, strict=True)]
        body["curve_calibration"] = [
            curve_point(o, y, cal_rows, f, t) for o, f in zip(outs, grid, strict=True)
        ]
        if fraction is not None:
            idx = grid.index(round(float(fraction), 6))
            rule = f"the configured fraction {fraction}"
        else:
            idx, rule = choose_operating_point(body["curve_calibration"], budget_usd_per_1k)
        operating = outs[idx]
        body["operating_point"] = {
            **body["curve"][idx],
            "rule": rule,
            "calibration": body["curve_calibration"][idx],
        }
        body["curve_note"] = "held-out half B; curve_calibration is the same on half A"
    return CascadeFusion(inputs, operating, calib, body)


def _live_halfwidth(
    inputs: CascadeInputs, held: np.ndarray, data: RunDir, fraction: float | None, calib
) -> float:
    """The band a live run used: the fraction's band, narrowed to what a budget let it ask."""
    w = band_halfwidth(inputs.distance[calib], fraction) if fraction is not None else math.inf
    lv = inputs.lvlm
    asked = lv.has_row & (lv.status != "budget_exceeded")
    d = inputs.distance
    if np.any(asked[held] & (d[held] > w)):
        raise UserError(
            f"{data.run_dir}: the LVLM {lv.name!r} has answers outside the band this cascade "
            "would use; it was not run as this live cascade (re-run `reidbench run`)"
        )
    in_band = held[d[held] <= w]
    if asked[in_band].all():
        return w
    # A budget stopped the run early: the band is what was actually asked.
    done = in_band[asked[in_band]]
    return float(d[done].max()) if done.size else -math.inf
