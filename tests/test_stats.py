"""Bootstrap, McNemar and paired AUC: vectorised numbers equal scikit-learn on every resample."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from reidbench.metrics import stats
from reidbench.metrics import verification as ver


def _data(n=40, seed=0, ties=True, decision_only=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = rng.normal(size=n) + y
    if ties:
        s = np.round(s * 2) / 2
    s[:decision_only] = np.nan
    return y, s


def test_resample_weights_count_draws():
    idx = stats.bootstrap_indices(7, 5, seed=1)
    w = stats.resample_weights(idx, 7)
    assert w.shape == (5, 7) and np.all(w.sum(axis=1) == 7)
    for row, draws in zip(w, idx, strict=True):
        assert row.tolist() == np.bincount(draws, minlength=7).tolist()


def test_bootstrap_is_deterministic_for_a_seed():
    a = stats.bootstrap_indices(50, 30, seed=5)
    assert np.array_equal(a, stats.bootstrap_indices(50, 30, seed=5))
    assert not np.array_equal(a, stats.bootstrap_indices(50, 30, seed=6))
    y, s = _data(50)
    pred = s >= 0.5
    d1 = stats.bootstrap_distribution(y, s, pred, 30, seed=5)
    d2 = stats.bootstrap_distribution(y, s, pred, 30, seed=5)
    for k in d1:
        assert np.array_equal(d1[k], d2[k], equal_nan=True)


@pytest.mark.slow
@pytest.mark.parametrize("seed,ties,decision_only", [(0, True, 0), (1, False, 0), (2, True, 6)])
def test_every_resample_equals_sklearn(seed, ties, decision_only):
    y, s = _data(40, seed, ties, decision_only)
    stated = np.random.default_rng(seed).integers(0, 2, y.size).astype(bool)
    pred = ver.decide(s, 0.5, stated)
    b = 30
    dist = stats.bootstrap_distribution(y, s, pred, b, seed=11)
    idx = stats.bootstrap_indices(y.size, b, seed=11)
    checked = 0
    for k, draw in enumerate(idx):
        yy, ss, pp = y[draw], s[draw], pred[draw]
        assert dist["accuracy"][k] == pytest.approx(accuracy_score(yy, pp), abs=1e-12)
        assert dist["recall"][k] == pytest.approx(recall_score(yy, pp), abs=1e-12)
        assert dist["f1"][k] == pytest.approx(f1_score(yy, pp, zero_division=0.0), abs=1e-12)
        if pp.any():
            assert dist["precision"][k] == pytest.approx(precision_score(yy, pp), abs=1e-12)
        scored = np.isfinite(ss)
        ys, sc = yy[scored], ss[scored]
        if 0 < ys.sum() < ys.size:
            checked += 1
            assert dist["auc"][k] == pytest.approx(roc_auc_score(ys, sc), abs=1e-12)
            assert dist["pr_auc"][k] == pytest.approx(average_precision_score(ys, sc), abs=1e-12)
            point = ver.ranking_metrics(ys, sc)
            assert dist["eer"][k] == pytest.approx(point["eer"], abs=1e-12)
            assert dist["tar_at_far_1e-2"][k] == pytest.approx(point["tar_at_far_1e-2"], abs=1e-12)
        else:
            assert np.isnan(dist["auc"][k]) and np.isnan(dist["eer"][k])
    assert checked > b // 2


@settings(max_examples=20, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6)), min_size=2, max_size=25),
    st.integers(0, 1000),
)
@pytest.mark.slow
def test_weighted_ranking_equals_sklearn_property(items, seed):
    y = np.array([i[0] for i in items])
    s = np.array([i[1] for i in items], float)
    idx = stats.bootstrap_indices(y.size, 8, seed)
    got = stats.ranking_from_weights(y, s, stats.resample_weights(idx, y.size))
    only = stats.ranking_from_weights(y, s, stats.resample_weights(idx, y.size), only_auc=True)
    assert np.array_equal(only["auc"], got["auc"], equal_nan=True)
    for k, draw in enumerate(idx):
        yy, ss = y[draw], s[draw]
        if 0 < yy.sum() < yy.size:
            assert got["auc"][k] == pytest.approx(roc_auc_score(yy, ss), abs=1e-12)
            assert got["pr_auc"][k] == pytest.approx(average_precision_score(yy, ss), abs=1e-12)
            point = ver.ranking_metrics(yy, ss)
            assert got["eer"][k] == pytest.approx(point["eer"], abs=1e-12)
            assert got["tar_at_far_1e-2"][k] == pytest.approx(point["tar_at_far_1e-2"], abs=1e-12)
        else:
            assert all(np.isnan(got[m][k]) for m in got)


def test_bootstrap_ci_brackets_and_is_strict_json():
    y, s = _data(300, seed=4, ties=False)
    pred = s >= 0.5
    ci = stats.bootstrap_ci(y, s, pred, 200, seed=0, rates={"coverage": np.ones(300, bool)})
    point_auc = roc_auc_score(y, s)
    iv = ci["intervals"]
    assert iv["auc"]["low"] < point_auc < iv["auc"]["high"]
    assert iv["accuracy"]["low"] < accuracy_score(y, pred) < iv["accuracy"]["high"]
    assert iv["coverage"] == {"low": 1.0, "high": 1.0, "n_valid": 200}
    assert all(v["n_valid"] == 200 for v in iv.values())
    # percentile rule on the raw distribution
    dist = stats.bootstrap_distribution(y, s, pred, 200, seed=0)
    lo, hi = np.percentile(dist["f1"], [2.5, 97.5])
    assert (iv["f1"]["low"], iv["f1"]["high"]) == (pytest.approx(lo), pytest.approx(hi))
    json.dumps(ci, allow_nan=False)


def test_bootstrap_ci_degenerate():
    off = stats.bootstrap_ci(np.array([0, 1]), np.array([0.1, 0.9]), None, 0, seed=0)
    assert off["intervals"]["auc"] is None and "disabled" in off["null_reasons"]["auc"]
    one = stats.bootstrap_ci(np.array([1, 1, 1]), np.array([0.1, 0.2, 0.3]), None, 20, seed=0)
    assert one["intervals"]["auc"] is None and "one class" in one["null_reasons"]["auc"]
    empty = stats.bootstrap_ci(np.array([], int), np.array([]), np.array([], bool), 20, seed=0)
    assert empty["intervals"]["f1"] is None
    json.dumps([off, one, empty], allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=0, max_size=60))
def test_mcnemar_counts_and_exact_p(items):
    a = np.array([i[0] for i in items], bool)
    b = np.array([i[1] for i in items], bool)
    got = stats.mcnemar(a, b)
    brute = {
        (True, True): 0,
        (True, False): 0,
        (False, True): 0,
        (False, False): 0,
    }
    for pair in items:
        brute[pair] += 1
    assert got["both_correct"] == brute[(True, True)]
    assert got["b"] == brute[(True, False)]
    assert got["c"] == brute[(False, True)]
    assert got["both_wrong"] == brute[(False, False)]
    assert got["n"] == len(items)
    n_disc = got["b"] + got["c"]
    expected = binomtest(got["b"], n_disc, 0.5).pvalue if n_disc else 1.0
    assert got["p_value"] == pytest.approx(expected)


def test_mcnemar_known_value():
    # b = 10, c = 2: exact two-sided p = 2 * P(X <= 2 | n=12, 1/2) = 2 * 79 / 4096
    a = np.array([True] * 10 + [False] * 2 + [True] * 5)
    b = np.array([False] * 10 + [True] * 2 + [True] * 5)
    got = stats.mcnemar(a, b)
    assert (got["b"], got["c"], got["both_correct"]) == (10, 2, 5)
    assert got["p_value"] == pytest.approx(2 * 79 / 4096)


@pytest.mark.slow
def test_paired_bootstrap_auc():
    y, s = _data(200, seed=8, ties=False)
    rng = np.random.default_rng(1)
    noisy = s + rng.normal(0, 2, y.size)
    res = stats.paired_bootstrap_auc(y, s, noisy, 100, seed=3)
    assert res["diff"] == pytest.approx(roc_auc_score(y, s) - roc_auc_score(y, noisy))
    assert res["ci"]["low"] < res["diff"] < res["ci"]["high"]
    # brute force on a few resamples: the same draws for both systems
    idx = stats.bootstrap_indices(y.size, 100, seed=3)
    diffs = [roc_auc_score(y[d], s[d]) - roc_auc_score(y[d], noisy[d]) for d in idx]
    assert res["mean_diff"] == pytest.approx(np.mean(diffs), abs=1e-12)
    p = min(1.0, 2 * min(np.mean(np.array(diffs) <= 0), np.mean(np.array(diffs) >= 0)))
    assert res["p_value"] == pytest.approx(p)
    same = stats.paired_bootstrap_auc(y, s, s, 50, seed=3)
    assert same["diff"] == 0.0 and same["p_value"] == 1.0
    assert same["ci"] == {"low": 0.0, "high": 0.0, "n_valid": 50}
    json.dumps([res, same], allow_nan=False)


def test_paired_bootstrap_auc_degenerate():
    one = stats.paired_bootstrap_auc(
        np.array([1, 1]), np.array([0.1, 0.2]), np.array([0.3, 0.1]), 10, 0
    )
    assert one["diff"] is None and one["null_reasons"]["diff"]
    off = stats.paired_bootstrap_auc(
        np.array([0, 1]), np.array([0.1, 0.2]), np.array([0.3, 0.1]), 0, 0
    )
    assert off["diff"] == 1.0 and off["ci"] is None and "disabled" in off["null_reasons"]["ci"]
