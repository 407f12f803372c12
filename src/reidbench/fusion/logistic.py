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

Input selection (on by default): an input that does not help must not make the
fused system worse than the best single input. `select_inputs` evaluates each
candidate input set (every non-empty subset for up to three inputs, else each
input alone and all of them) with the same pipeline by stratified K-fold
cross-validation on the calibration half, scores each by the ROC AUC of its
out-of-fold predictions, and keeps the best; ties (within `SELECT_TOLERANCE`)
go to the candidate with fewer inputs. Only the chosen inputs are then fitted
on the whole calibration half.

The split of responsibilities makes the leak impossible by construction:
`feature_spec` sees no labels at all, `select_inputs` and `fit_logistic`
receive only the calibration rows and their labels, and `fuse_logistic` hands
them nothing else.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from reidbench.errors import UserError
from reidbench.metrics.verification import best_f1_threshold
from reidbench.rundir import FUSED_SCALE, RunDir, SystemView

IMPUTE_RULE = "mean normalised score of the system's answered calibration pairs"
CV_SCORING = "neg_log_loss"
SELECT_TOLERANCE = 1e-9  # CV AUC means closer than this are a tie (fewer inputs win)
SUBSETS_UP_TO = 3  # up to this many inputs every non-empty subset is a candidate (cost)
SELECT_RULE = (
    "each candidate input set is the same pipeline (its scores, failure flags for its "
    "systems, StandardScaler + LogisticRegressionCV) evaluated by stratified K-fold "
    "cross-validation on calibration half A only (the same folds for every candidate; C "
    "is re-chosen inside each training fold); score = ROC AUC of the out-of-fold "
    "predictions, per fold; the candidate with the highest mean wins, ties (within 1e-9) "
    "go to the candidate with fewer inputs, then to the earlier one listed"
)


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
    _check_folds(y, cv_folds)
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


def _check_folds(y: np.ndarray, cv_folds: int) -> None:
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    if min(n_pos, n_neg) < cv_folds:
        raise UserError(
            f"calibration half has {n_pos} same-person and {n_neg} different-person pairs; "
            f"{cv_folds}-fold cross-validation needs at least {cv_folds} of each; "
            "curate more pairs (reidbench pairs --positives/--negatives) or lower cv_folds"
        )


def candidate_sets(systems: list[str] | tuple[str, ...]) -> list[tuple[str, ...]]:
    """Input sets to compare: every non-empty subset for up to `SUBSETS_UP_TO` inputs
    (at most 7 candidates), else each input alone and all of them (k + 1). Listed by size,
    then in the order the systems were given.

    Each candidate costs K nested `LogisticRegressionCV` fits (0.2-0.7 s each on a 2-core
    CPU, whatever the pair count: sklearn's per-call overhead dominates), so four inputs
    would cost 15 candidates instead of 5; every subset stops at three."""
    systems = tuple(systems)
    k = len(systems)
    sizes = range(1, k + 1) if k <= SUBSETS_UP_TO else (1, k)
    return [c for r in sizes for c in itertools.combinations(systems, r)]


def candidate_rule(k: int) -> str:
    if k <= SUBSETS_UP_TO:
        return f"every non-empty subset of the {k} inputs ({2**k - 1} candidates)"
    return (
        f"each input alone and all {k} inputs ({k + 1} candidates; every subset only up to "
        f"{SUBSETS_UP_TO} inputs)"
    )


@dataclass
class Candidate:
    inputs: tuple[str, ...]
    features: list[str]
    fold_auc: list[float]
    oof_auc: float

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_auc))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_auc))

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": list(self.inputs),
            "features": self.features,
            "cv_auc_mean": self.mean,
            "cv_auc_std": self.std,
            "cv_auc_folds": list(self.fold_auc),
            "cv_auc_pooled": self.oof_auc,
        }


@dataclass
class Selection:
    """Which inputs the fusion keeps, and the cross-validated evidence for the choice."""

    enabled: bool
    requested: tuple[str, ...]
    chosen: tuple[str, ...]
    cv_folds: int
    seed: int
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def dropped(self) -> list[str]:
        return [s for s in self.requested if s not in self.chosen]

    def _by_inputs(self, inputs: tuple[str, ...]) -> Candidate | None:
        return next((c for c in self.candidates if c.inputs == inputs), None)

    @property
    def note(self) -> str:
        if not self.enabled:
            return "input selection off (select_inputs = false / --no-select): all inputs kept"
        full, kept = self._by_inputs(self.requested), self._by_inputs(self.chosen)
        assert full is not None and kept is not None  # both were scored when selection is on
        if not self.dropped:
            return (
                "all inputs kept: no smaller input set had a higher cross-validated AUC on "
                f"calibration pairs (all inputs {full.mean:.4f})"
            )
        names = self.dropped
        who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        verb = "was" if len(names) == 1 else "were"
        it = "it" if len(names) == 1 else "they"
        return (
            f"{who} {verb} dropped: {it} did not raise cross-validated AUC on calibration "
            f"pairs ({'+'.join(self.chosen)} {kept.mean:.4f} vs all inputs {full.mean:.4f})"
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "enabled": self.enabled,
            "requested": list(self.requested),
            "chosen": list(self.chosen),
            "dropped": self.dropped,
            "note": self.note,
        }
        if not self.enabled:
            out["rule"] = "off: every requested input is fitted"
            return out
        return {
            **out,
            "rule": SELECT_RULE,
            "candidate_set": candidate_rule(len(self.requested)),
            "tolerance": SELECT_TOLERANCE,
            "cv": {
                "folds": self.cv_folds,
                "splitter": "StratifiedKFold(shuffle=True)",
                "seed": self.seed,
                "scoring": "roc_auc of out-of-fold predictions (mean and std over folds; "
                "pooled: all out-of-fold predictions at once, for information)",
                "pairs": "calibration half A only",
            },
            "candidates": [c.to_json() for c in self.candidates],
        }


def cross_validated_auc(
    x_cal: np.ndarray,
    y_cal: np.ndarray,
    feature_names: list[str],
    *,
    cv_folds: int,
    cs: int | list[float],
    seed: int,
) -> tuple[list[float], float]:
    """Per-fold ROC AUC of out-of-fold predictions of `fit_logistic` (C re-chosen in each
    training fold), and the AUC of all out-of-fold predictions pooled. Calibration rows only."""
    y = np.asarray(y_cal).astype(np.int64)
    oof = np.empty(y.size, dtype=np.float64)
    aucs = []
    outer = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    for train, test in outer.split(x_cal, y):
        model = fit_logistic(
            x_cal[train], y[train], feature_names, cv_folds=cv_folds, cs=cs, seed=seed
        )
        oof[test] = model.predict(x_cal[test])
        aucs.append(float(roc_auc_score(y[test], oof[test])))
    return aucs, float(roc_auc_score(y, oof))


def select_inputs(
    views: dict[str, SystemView],
    systems: list[str],
    calib: np.ndarray,
    y_cal: np.ndarray,
    *,
    cv_folds: int = 5,
    cs: int | list[float] = 10,
    seed: int = 0,
) -> Selection:
    """Choose the input set by cross-validated AUC on the calibration half.

    Receives the calibration labels only (`y_cal`, aligned with `calib`'s true entries);
    the views hold scores, never labels.
    """
    y = np.asarray(y_cal).astype(np.int64)
    _check_folds(y, cv_folds)
    # Each outer training fold is cross-validated again (to choose C): it needs cv_folds
    # pairs of each label too. Stratified folds take at most ceil(m / K) of a label m.
    least = min(int(y.sum()), int(y.size - y.sum()))
    need = next(m for m in itertools.count(cv_folds) if m - -(-m // cv_folds) >= cv_folds)
    if least < need:
        raise UserError(
            f"input selection runs {cv_folds}-fold cross-validation inside each of "
            f"{cv_folds} folds and needs at least {need} pairs of each label on the "
            f"calibration half (it has {least}); curate more pairs, lower cv_folds, or "
            "turn selection off (--no-select / select_inputs = false)"
        )
    rows = np.flatnonzero(calib)
    candidates = []
    for inputs in candidate_sets(systems):
        spec = feature_spec(views, list(inputs), calib)
        aucs, pooled = cross_validated_auc(
            spec.matrix(views, rows), y, spec.names, cv_folds=cv_folds, cs=cs, seed=seed
        )
        candidates.append(Candidate(inputs, spec.names, aucs, pooled))
    best = max(c.mean for c in candidates)
    chosen = min(
        (i for i, c in enumerate(candidates) if c.mean >= best - SELECT_TOLERANCE),
        key=lambda i: (len(candidates[i].inputs), i),
    )
    return Selection(True, tuple(systems), candidates[chosen].inputs, cv_folds, seed, candidates)


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
    selection: Selection

    @property
    def inputs(self) -> list[str]:
        """The systems the fitted model uses (the requested ones, less any dropped)."""
        return list(self.spec.systems)

    def record(self) -> dict[str, Any]:
        return {
            "features": self.spec.to_json(),
            "model": self.model.to_json(),
            "threshold": {
                "value": self.threshold,
                "scale": FUSED_SCALE,
                "source": "calibration_best_f1",
                "calibration_f1": self.calibration_f1,
                "rule": "best F1 of the fitted probabilities on calibration half A",
            },
            "failed_pairs": self.failed,
        }


def fuse_logistic(
    data: RunDir,
    systems: list[str],
    *,
    calib: np.ndarray | None = None,
    cv_folds: int = 5,
    cs: int | list[float] = 10,
    select: bool = True,
) -> LogisticFusion:
    """Fit the fusion of `systems` on calibration half A and score every pair.

    With `select` (the default) the inputs are first chosen by `select_inputs`; without
    it every requested system is fitted.
    """
    if len(systems) < 2:
        raise UserError(f"fusion needs at least two systems, got {systems}; pass --systems A,B")
    views = {name: data.system(name) for name in systems}
    calib = data.calibration() if calib is None else np.asarray(calib, dtype=bool)
    feature_spec(views, systems, calib)  # every input must have calibration answers
    cal_rows = np.flatnonzero(calib)
    if select:
        selection = select_inputs(
            views, systems, calib, data.label[cal_rows], cv_folds=cv_folds, cs=cs, seed=data.seed
        )
    else:
        selection = Selection(False, tuple(systems), tuple(systems), cv_folds, data.seed)
    spec = feature_spec(views, list(selection.chosen), calib)
    x = spec.matrix(views)
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
            "held_out": int((~views[name].answered[data.held_out(calib)]).sum()),
        }
        for name in systems
    }
    return LogisticFusion(spec, model, prob, float(t), f1, calib, failed, selection)
