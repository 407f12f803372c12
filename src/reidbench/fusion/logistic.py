"""Logistic score fusion: standardised features and `LogisticRegressionCV`, fit on calibration.

Features, per fused system: its normalised score (`score / scale`; an answer
with only a stated decision counts as 1 for "same", 0 for "different"), and,
for a system that failed on at least one calibration pair, an indicator
`failed:<system>` (1 where the system gave no answer). A failed pair's score
is imputed with the mean normalised score of the system's answered
calibration pairs: explicit, recorded, and with the indicator the model
learns what a failure means instead of pairs being dropped. A system that
failed only on held-out pairs gets the imputed score there and no indicator
(there was nothing to learn it from); the record counts such pairs.

The split of responsibilities makes the leak impossible by construction:
`feature_spec` sees no labels at all, `fit_logistic` receives only the
calibration rows and their labels, and `fuse_logistic` hands it nothing else.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from reidbench.errors import UserError
from reidbench.fusion.rundata import RunData, SystemView
from reidbench.metrics.verification import best_f1_threshold

IMPUTE_RULE = "mean normalised score of the system's answered calibration pairs"
CV_SCORING = "neg_log_loss"


@dataclass(frozen=True)
class FeatureSpec:
    """How features are built; learnt from calibration pairs without their labels."""

    systems: tuple[str, ...]
    impute: dict[str, float]
    indicators: tuple[str, ...]  # systems with a failed:<system> column

    @property
    def names(self) -> list[str]:
        return [f"score:{s}" for s in self.systems] + [f"failed:{s}" for s in self.indicators]

    def matrix(self, views: dict[str, SystemView], rows: np.ndarray | None = None) -> np.ndarray:
        """(n, d) feature matrix for the given row indices (all pairs by default)."""
        cols = []
        for name in self.systems:
            s = views[name].normalised
            cols.append(np.where(np.isfinite(s), s, self.impute[name]))
        for name in self.indicators:
            cols.append((~views[name].answered).astype(np.float64))
        x = np.column_stack(cols)
        return x if rows is None else x[rows]

    def to_json(self) -> dict[str, Any]:
        return {
            "systems": list(self.systems),
            "names": self.names,
            "imputation": {"rule": IMPUTE_RULE, "values": dict(self.impute)},
            "indicators": list(self.indicators),
        }


def feature_spec(
    views: dict[str, SystemView], systems: list[str], calib: np.ndarray
) -> FeatureSpec:
    """Imputation values and indicator columns from the calibration pairs (no labels read)."""
    impute: dict[str, float] = {}
    indicators = []
    for name in systems:
        v = views[name]
        s = v.normalised[calib]
        ok = np.isfinite(s)
        if not ok.any():
            raise UserError(
                f"system {name!r} answered none of the {int(calib.sum())} calibration pairs; "
                "it cannot be fused (check its failures in metrics.json)"
            )
        impute[name] = float(s[ok].mean())
        if (~ok).any():
            indicators.append(name)
    return FeatureSpec(tuple(systems), impute, tuple(indicators))


@dataclass
class LogisticModel:
    pipeline: Pipeline
    feature_names: list[str]
    cv_folds: int
    cs: list[float]
    cv_seed: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Fused probability that a pair shows the same person."""
        return self.pipeline.predict_proba(x)[:, 1]

    def to_json(self) -> dict[str, Any]:
        scaler: StandardScaler = self.pipeline.named_steps["scale"]
        lr: LogisticRegressionCV = self.pipeline.named_steps["logistic"]
        w = lr.coef_.ravel()
        b = float(lr.intercept_.ravel()[0])
        mean, scale = scaler.mean_, scaler.scale_
        raw_w = w / scale
        raw_b = b - float(np.sum(w * mean / scale))
        scores = np.asarray(lr.scores_)[:, 0, :]  # (folds, Cs): new-style attributes
        return {
            "estimator": "sklearn Pipeline(StandardScaler, LogisticRegressionCV)",
            "features": self.feature_names,
            "scaler": {"mean": mean.tolist(), "scale": scale.tolist()},
            "coef_standardised": w.tolist(),
            "intercept_standardised": b,
            "coef": raw_w.tolist(),
            "intercept": raw_b,
            "coef_note": "coef / intercept act on the raw features: "
            "p = 1 / (1 + exp(-(intercept + sum(coef * x))))",
            "C": float(lr.C_),
            "Cs": [float(c) for c in lr.Cs_],
            "penalty": "l2",
            "cv": {
                "folds": self.cv_folds,
                "splitter": "StratifiedKFold(shuffle=True)",
                "seed": self.cv_seed,
                "scoring": CV_SCORING,
                "mean_score_per_C": scores.mean(axis=0).tolist(),
                "std_score_per_C": scores.std(axis=0).tolist(),
                "best_mean_score": float(scores.mean(axis=0).max()),
            },
        }


def fit_logistic(
    x_cal: np.ndarray,
    y_cal: np.ndarray,
    feature_names: list[str],
    *,
    cv_folds: int = 5,
    cs: int | list[float] = 10,
    seed: int = 0,
) -> LogisticModel:
    """Fit standardisation + L2 logistic regression with C chosen by stratified K-fold CV.

    Receives the calibration rows only: it cannot see a held-out label.
    """
    y = np.asarray(y_cal).astype(np.int64)
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    if min(n_pos, n_neg) < cv_folds:
        raise UserError(
            f"calibration half has {n_pos} same-person and {n_neg} different-person pairs; "
            f"{cv_folds}-fold cross-validation needs at least {cv_folds} of each; "
            "curate more pairs (reidbench pairs --positives/--negatives) or lower cv_folds"
        )
    grid = cs if isinstance(cs, int) else [float(c) for c in cs]
    lr = LogisticRegressionCV(
        Cs=grid,
        l1_ratios=(0.0,),
        cv=StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed),
        scoring=CV_SCORING,
        max_iter=1000,
        use_legacy_attributes=False,
    )
    pipe = Pipeline([("scale", StandardScaler()), ("logistic", lr)])
    with warnings.catch_warnings():
        # A constant feature column (e.g. a failed: indicator that is rare) is harmless here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*divide by zero.*")
        pipe.fit(np.asarray(x_cal, dtype=np.float64), y)
    return LogisticModel(pipe, list(feature_names), cv_folds, list(np.atleast_1d(lr.Cs_)), seed)


@dataclass
class LogisticFusion:
    """The fitted fusion and its fused probabilities for every pair of the run."""

    spec: FeatureSpec
    model: LogisticModel
    prob: np.ndarray  # all pairs (calibration ones are in-sample; only held-out are reported)
    threshold: float
    calibration_f1: float | None
    calib: np.ndarray
    failed: dict[str, dict[str, int]]  # system -> {"calibration": n, "held_out": n}

    def record(self) -> dict[str, Any]:
        return {
            "features": self.spec.to_json(),
            "model": self.model.to_json(),
            "threshold": {
                "value": self.threshold,
                "scale": 1.0,
                "source": "calibration_best_f1",
                "calibration_f1": self.calibration_f1,
                "rule": "best F1 of the fitted probabilities on calibration half A",
            },
            "failed_pairs": self.failed,
        }


def fuse_logistic(
    data: RunData,
    systems: list[str],
    *,
    calib: np.ndarray | None = None,
    cv_folds: int = 5,
    cs: int | list[float] = 10,
) -> LogisticFusion:
    """Fit the fusion of `systems` on calibration half A and score every pair."""
    if len(systems) < 2:
        raise UserError(f"fusion needs at least two systems, got {systems}; pass --systems A,B")
    views = {name: data.system(name) for name in systems}
    calib = data.calibration() if calib is None else np.asarray(calib, dtype=bool)
    spec = feature_spec(views, systems, calib)
    x = spec.matrix(views)
    cal_rows = np.flatnonzero(calib)
    model = fit_logistic(
        x[cal_rows], data.label[cal_rows], spec.names, cv_folds=cv_folds, cs=cs, seed=data.seed
    )
    prob = model.predict(x)
    t, f1, reason = best_f1_threshold(data.label[cal_rows], prob[cal_rows])
    if t is None:
        raise UserError(f"cannot choose the fused threshold: {reason}; curate more pairs")
    failed = {
        name: {
            "calibration": int((~views[name].answered[calib]).sum()),
            "held_out": int((~views[name].answered[~calib]).sum()),
        }
        for name in systems
    }
    return LogisticFusion(spec, model, prob, float(t), f1, calib, failed)
