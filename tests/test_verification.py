"""Verification metrics: every number with a scikit-learn counterpart must equal it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from reidbench.metrics import verification as ver


def _pairs(min_size: int = 2, max_size: int = 60, levels: int = 12):
    """(labels, scores) with both classes and plenty of ties (scores on a coarse grid)."""
    item = st.tuples(st.integers(0, 1), st.integers(0, levels))
    return (
        st.lists(item, min_size=min_size, max_size=max_size)
        .filter(lambda xs: 0 < sum(x[0] for x in xs) < len(xs))
        .map(lambda xs: (np.array([x[0] for x in xs]), np.array([x[1] for x in xs], float)))
    )


def _brute_roc(y, s):
    """ROC points by direct counting, threshold from +inf down through every distinct score."""
    thresholds = [np.inf, *sorted(set(s.tolist()), reverse=True)]
    pos, neg = s[y == 1], s[y == 0]
    return [(float(np.mean(neg >= t)), float(np.mean(pos >= t)), t) for t in thresholds]


def _brute_eer(y, s):
    pts = _brute_roc(y, s)
    for k, (fpr, tpr, _) in enumerate(pts):
        fnr = 1 - tpr
        if fpr >= fnr:
            if k == 0 or fpr == fnr:
                return fpr
            f0, t0, _ = pts[k - 1]
            d0, d1 = f0 - (1 - t0), fpr - fnr
            return f0 + (-d0 / (d1 - d0)) * (fpr - f0)
    raise AssertionError("unreachable: the last ROC point has FPR = 1")


def _brute_tar(y, s, far):
    return max(tpr for fpr, tpr, _ in _brute_roc(y, s) if fpr <= far)


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(_pairs(), st.integers(0, 12))
def test_threshold_metrics_equal_sklearn(data, thr):
    y, s = data
    pred = ver.decide(s, float(thr), np.zeros(y.size, bool))
    assert np.array_equal(pred, s >= thr)
    got = ver.threshold_metrics(y, pred)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-15)
    assert got["recall"] == pytest.approx(recall_score(y, pred), abs=1e-15)
    assert got["f1"] == pytest.approx(f1_score(y, pred, zero_division=0.0), abs=1e-15)
    if pred.any():
        assert got["precision"] == pytest.approx(precision_score(y, pred), abs=1e-15)
    else:
        assert got["precision"] is None and "precision" in got["null_reasons"]
    cm = ver.confusion(y, pred)
    assert cm["matrix"] == confusion_matrix(y, pred, labels=[0, 1]).tolist()
    assert (cm["tn"], cm["fp"], cm["fn"], cm["tp"]) == tuple(
        confusion_matrix(y, pred, labels=[0, 1]).ravel().tolist()
    )


@pytest.mark.slow
@settings(max_examples=50, deadline=None)
@given(_pairs())
def test_ranking_metrics_equal_sklearn_and_brute_force(data):
    y, s = data
    got = ver.ranking_metrics(y, s)
    assert got["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert got["pr_auc"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert got["eer"] == pytest.approx(_brute_eer(y, s), abs=1e-12)
    assert got["tar_at_far_1e-2"] == pytest.approx(_brute_tar(y, s, 1e-2), abs=1e-12)
    assert 0.0 <= got["eer"] <= 1.0
    assert got["null_reasons"] == {} or set(got["null_reasons"]) == {"tar_at_far_1e-2_threshold"}


@pytest.mark.slow
@settings(max_examples=80, deadline=None)
@given(_pairs(), st.sampled_from([0.0, 0.05, 0.1, 0.25, 0.5]))
def test_tar_at_far_is_brute_force_and_threshold_reproduces_it(data, far):
    y, s = data
    fpr, tpr, thr = ver.roc_points(y, s)
    tar, t = ver.tar_at_far_from_roc(fpr, tpr, thr, far)
    assert tar == pytest.approx(_brute_tar(y, s, far), abs=1e-12)
    if t is not None:  # deciding with that threshold gives that TAR at FAR <= far
        assert np.mean(s[y == 1] >= t) == pytest.approx(tar)
        assert np.mean(s[y == 0] >= t) <= far
    else:
        assert tar == 0.0


def test_eer_known_values():
    y = np.array([0, 0, 1, 1])
    assert ver.ranking_metrics(y, np.array([0.1, 0.2, 0.8, 0.9]))["eer"] == 0.0
    assert ver.ranking_metrics(y, np.array([0.9, 0.8, 0.2, 0.1]))["eer"] == 1.0
    # negatives 1,3 ; positives 2,4: ROC (0,0),(0,.5),(.5,.5),(.5,1),(1,1) -> FPR = FNR = 0.5
    assert ver.ranking_metrics(y, np.array([1.0, 3.0, 2.0, 4.0]))["eer"] == 0.5
    # all scores equal: a single diagonal step; EER 0.5, AUC 0.5, nothing accepted at FAR 1%
    flat = ver.ranking_metrics(y, np.ones(4))
    assert (flat["auc"], flat["eer"], flat["tar_at_far_1e-2"]) == (0.5, 0.5, 0.0)
    assert flat["tar_at_far_1e-2_threshold"] is None


def test_eer_interpolates_between_roc_points():
    # ROC: (0,0) (0,1/3) (1/2,1/3) (1/2,1) (1,1). d = FPR-FNR: -1, -2/3, -1/6, 1/2.
    # Crossing between (1/2,1/3) [d=-1/6] and (1/2,1) [d=1/2]: FPR stays 1/2.
    y = np.array([1, 0, 1, 1, 0])
    s = np.array([5.0, 4.0, 3.0, 3.0, 1.0])
    eer, thr = ver.eer_from_roc(*ver.roc_points(y, s))
    assert eer == pytest.approx(0.5)
    assert thr == 3.0
    # a genuine diagonal crossing: one tie group holding both a positive and a negative
    y = np.array([1, 1, 0, 0])
    s = np.array([2.0, 1.0, 1.0, 0.0])
    # ROC: (0,0) (0,.5) (.5,1) (1,1); d: -1, -.5, .5 -> t = .5 -> FPR .25
    assert ver.ranking_metrics(y, s)["eer"] == pytest.approx(0.25)


def test_degenerate_inputs_give_null_with_reason():
    empty = ver.threshold_metrics(np.array([], int), np.array([], bool))
    assert empty["accuracy"] is None and empty["null_reasons"]["f1"] == "no decided pairs"
    one = ver.ranking_metrics(np.array([1, 1, 1]), np.array([0.1, 0.5, 0.9]))
    assert one["auc"] is None and "one class" in one["null_reasons"]["auc"]
    none = ver.ranking_metrics(np.array([], int), np.array([]))
    assert none["eer"] is None and none["null_reasons"]["eer"] == "no scored pairs"
    negs = ver.threshold_metrics(np.array([0, 0]), np.array([False, False]))
    assert negs["accuracy"] == 1.0 and negs["recall"] is None and negs["f1"] is None
    json.dumps([empty, one, none, negs], allow_nan=False)


def _f1(y, pred):
    tp = int(np.sum(pred & (y == 1)))
    wrong = int(np.sum(pred != (y == 1)))
    return 2 * tp / (2 * tp + wrong) if tp + wrong else 0.0


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(_pairs(min_size=1))
def test_best_f1_threshold_is_the_brute_force_optimum(data):
    y, s = data
    t, f1, reason = ver.best_f1_threshold(y, s)
    assert reason is None
    cands = sorted(set(s.tolist()))
    best = max(_f1(y, s >= c) for c in cands)
    assert f1 == pytest.approx(best, abs=1e-12)
    assert f1_score(y, s >= t, zero_division=0.0) == pytest.approx(best, abs=1e-12)
    # ties go to the highest candidate; t sits strictly between two distinct scores (or on the min)
    winners = [c for c in cands if abs(_f1(y, s >= c) - best) < 1e-12]
    top = max(winners)
    lower = [c for c in cands if c < top]
    assert t == (top + max(lower)) / 2 if lower else t == top


def test_best_f1_threshold_degenerate():
    assert ver.best_f1_threshold(np.array([], int), np.array([]))[0] is None
    t, f1, reason = ver.best_f1_threshold(np.array([0, 0]), np.array([0.2, 0.4]))
    assert t is None and f1 is None and "no same-person" in reason


def test_decide_uses_stated_decision_without_score():
    s = np.array([60.0, np.nan, 40.0, np.nan, 50.0])
    stated = np.array([False, True, True, False, False])
    assert ver.decide(s, 50.0, stated).tolist() == [True, True, False, False, True]
    with pytest.raises(ValueError):
        ver.decide(s, None, stated)
    assert ver.decide(np.array([np.nan]), None, np.array([True])).tolist() == [True]


def test_score_distributions_match_numpy():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    s = rng.uniform(0, 100, 200)
    d = ver.score_distributions(y, s, 100.0, bins=10)
    for key, lab in (("same", 1), ("different", 0)):
        v = s[y == lab]
        assert d[key]["n"] == v.size
        assert d[key]["mean"] == pytest.approx(v.mean())
        assert d[key]["std"] == pytest.approx(v.std())
        assert d[key]["median"] == pytest.approx(np.median(v))
        assert d["histogram"][key] == np.histogram(v, bins=10, range=(0, 100))[0].tolist()
    assert d["histogram"]["edges"] == pytest.approx(np.linspace(0, 100, 11).tolist())
    empty = ver.score_distributions(np.array([], int), np.array([]), 1.0)
    assert empty["same"]["mean"] is None
    json.dumps(empty, allow_nan=False)


@settings(max_examples=30, deadline=None)
@given(_pairs(levels=20))
def test_calibration_bins_match_sklearn(data):
    y, s = data
    p = s / 20.0
    got = ver.calibration_bins(y, p, n_bins=5)
    frac, mean_pred = calibration_curve(y, p, n_bins=5)
    assert [b["fraction_positive"] for b in got["bins"]] == pytest.approx(frac.tolist())
    assert [b["mean_predicted"] for b in got["bins"]] == pytest.approx(mean_pred.tolist())
    assert sum(b["n"] for b in got["bins"]) == y.size
    assert got["brier"] == pytest.approx(brier_score_loss(y, p))
    ece = sum(
        b["n"] / y.size * abs(b["fraction_positive"] - b["mean_predicted"]) for b in got["bins"]
    )
    assert got["ece"] == pytest.approx(ece)


def test_curve_json_is_strict_and_thinned():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    s = rng.normal(size=5000) + y
    roc = ver.roc_curve_json(y, s, max_points=200)
    pr = ver.pr_curve_json(y, s, max_points=200)
    assert len(roc["fpr"]) <= 200 and roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0
    assert roc["thresholds"][0] is None  # +inf
    assert len(pr["precision"]) <= 200 and pr["recall"][-1] == 0.0 and pr["thresholds"][-1] is None
    json.dumps([roc, pr], allow_nan=False)
