"""Coverage-aware metrics: abstentions as coin flips, checked against brute force; refusing
never pays."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reidbench.metrics import stats
from reidbench.metrics import verification as ver
from reidbench.metrics.clusters import pair_clusters
from reidbench.metrics.coverage import (
    coverage_aware_ci,
    coverage_aware_metrics,
    coverage_aware_paired,
    expected_correct,
    risk_coverage,
    threshold_confidence,
)

pairs_strategy = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 6), st.booleans()), min_size=2, max_size=14
)


def _unpack(rows):
    y = np.array([r[0] for r in rows])
    s = np.array([float(r[1]) for r in rows])
    ans = np.array([r[2] for r in rows])
    return y, np.where(ans, s, np.nan), ans


def _brute_auc(y, s, ans):
    """Mean over every (same, different) comparison: 1 / 0.5 / 0 when both are answered,
    0.5 (tied) when either abstained."""
    total = []
    for i in np.flatnonzero(y == 1):
        for j in np.flatnonzero(y == 0):
            if ans[i] and ans[j]:
                total.append(1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
            else:
                total.append(0.5)
    return float(np.mean(total))


@given(pairs_strategy)
@settings(max_examples=80, deadline=None)
def test_auc_counts_an_abstained_pair_as_tied_with_the_other_class(rows):
    y, s, ans = _unpack(rows)
    got = coverage_aware_metrics(y, s, s >= 3, ans)
    if y.min() == y.max():
        assert got["auc"] is None
    else:
        assert got["auc"] == pytest.approx(_brute_auc(y, s, ans))


small_pairs = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 6), st.booleans()), min_size=2, max_size=9
)


@pytest.mark.slow
@given(small_pairs)
@settings(max_examples=60, deadline=None)
def test_decisions_and_roc_are_the_expectation_over_every_coin_flip(rows):
    y, s, ans = _unpack(rows)
    thr = 3.0
    abst = np.flatnonzero(~ans)
    outcomes = list(itertools.product([False, True], repeat=abst.size))
    # accuracy: expected accuracy over every outcome of the coin flips
    accs = []
    for flips in outcomes:
        pred = np.where(ans, np.nan_to_num(s) >= thr, False)
        pred[abst] = flips
        accs.append(np.mean(pred == (y == 1)))
    got = coverage_aware_metrics(y, s, s >= thr, ans, far=0.25)
    assert got["accuracy"] == pytest.approx(np.mean(accs))
    assert got["coverage"] == pytest.approx(ans.mean())
    if y.min() == y.max():
        return
    # ROC: expected (FPR, TPR) at each threshold, origin and (1, 1) as end points
    cuts = np.r_[np.inf, np.unique(s[ans])[::-1]]
    fpr, tpr = [0.0], [0.0]
    for t in cuts:
        tp = fp = 0.0
        for flips in outcomes:
            pred = np.where(ans, np.nan_to_num(s, nan=-1) >= t, False)
            pred[abst] = flips
            tp += np.mean(pred[y == 1])
            fp += np.mean(pred[y == 0])
        tpr.append(tp / len(outcomes))
        fpr.append(fp / len(outcomes))
    fpr, tpr = np.array([*fpr, 1.0]), np.array([*tpr, 1.0])
    thr_arr = np.zeros(fpr.size)
    assert got["auc"] == pytest.approx(np.trapezoid(tpr, fpr))
    assert got["eer"] == pytest.approx(ver.eer_from_roc(fpr, tpr, thr_arr)[0])
    assert got[ver.TAR_KEY] == pytest.approx(ver.tar_at_far_from_roc(fpr, tpr, thr_arr, 0.25)[0])


@pytest.mark.slow
@given(st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_without_abstentions_it_is_the_ordinary_metrics(seed):
    rng = np.random.default_rng(seed)
    n = 40
    y = rng.integers(0, 2, n)
    s = np.round(rng.normal(size=n) + y, 1)
    pred = s >= 0.5
    got = coverage_aware_metrics(y, s, pred, np.ones(n, bool))
    want = {**ver.threshold_metrics(y, pred), **ver.ranking_metrics(y, s)}
    for k in ("accuracy", "precision", "recall", "f1", "auc", "eer", ver.TAR_KEY):
        if want[k] is None:
            assert got[k] is None
        else:
            assert got[k] == pytest.approx(want[k])


def test_expected_correct_and_precision_recall_use_half_counts():
    y = np.array([1, 1, 0, 0])
    pred = np.array([True, False, False, True])
    ans = np.array([True, False, True, False])
    assert expected_correct(y, pred, ans).tolist() == [1.0, 0.5, 1.0, 0.5]
    got = coverage_aware_metrics(y, np.array([1.0, np.nan, 0.0, np.nan]), pred, ans)
    # tp = 1 + 0.5, fn = 0.5, tn = 1 + 0.5, fp = 0.5
    assert got["precision"] == pytest.approx(1.5 / 2.0)
    assert got["recall"] == pytest.approx(1.5 / 2.0)
    assert got["f1"] == pytest.approx(3.0 / 4.0)


def test_risk_coverage_by_hand():
    y = np.array([1, 0, 1, 0, 1])
    pred = np.array([1, 0, 0, 1, 1], bool)  # errors on pairs 2 and 3
    conf = np.array([5.0, 4.0, 3.0, 3.0, 0.0])
    ans = np.array([True, True, True, True, False])
    got = risk_coverage(y, pred, conf, ans)
    assert got["coverage"] == pytest.approx([0.2, 0.4, 0.8, 1.0])
    assert got["risk"] == pytest.approx([0.0, 0.0, 0.5, 2.5 / 5])
    assert got["aurc"] == pytest.approx(0.2 * 0 + 0.2 * 0 + 0.4 * 0.5 + 0.2 * 0.5)
    assert got["aurc_answered"] == pytest.approx((0.0 + 0.0 + 2 * 0.5) / 4)
    assert got["coverage_max"] == pytest.approx(0.8)


def test_pair_bootstrap_interval_equals_a_plain_loop():
    rng = np.random.default_rng(3)
    n = 50
    y = rng.integers(0, 2, n)
    s = rng.normal(size=n) + y
    ans = rng.random(n) > 0.2
    s = np.where(ans, s, np.nan)
    pred = s >= 0.5
    got = coverage_aware_ci(y, s, pred, ans, 200, seed=4)["intervals"]["accuracy"]
    vals = []
    for draw in stats.bootstrap_indices(n, 200, seed=4):
        vals.append(np.mean(expected_correct(y[draw], pred[draw], ans[draw])))
    assert got["low"] == pytest.approx(np.percentile(vals, 2.5))
    assert got["high"] == pytest.approx(np.percentile(vals, 97.5))


def _lvlm_scenario(n_ids=60, per_id=10, seed=0):
    """An honest LVLM-like integer scorer (0-100 in steps of 5, threshold 50) with person
    effects; pairs over n_ids people, half same-person."""
    rng = np.random.default_rng(seed)
    n = n_ids * per_id
    pa = np.repeat(np.arange(1, n_ids + 1), per_id)
    y = (np.arange(n) % 2).astype(np.int64)
    pb = np.where(y == 1, pa, (pa + rng.integers(1, n_ids, n) - 1) % n_ids + 1)
    person = rng.normal(size=n_ids + 1) * 0.5
    z = 1.6 * (y - 0.5) * 2 + person[pa] + rng.normal(size=n) * 1.1
    s = np.clip(np.round(100 / (1 + np.exp(-z)) / 5) * 5, 0, 100)
    return y, s, pair_clusters(pa, pb)


@pytest.mark.parametrize("refuse", [0.20, 0.45])
def test_refusing_the_pairs_nearest_the_threshold_never_pays(refuse):
    y, s, pc = _lvlm_scenario()
    n = y.size
    honest = (s, s >= 50, np.ones(n, bool))
    near = np.argsort(np.abs(s - 50), kind="stable")[: int(refuse * n)]
    ans = np.ones(n, bool)
    ans[near] = False
    s_r = np.where(ans, s, np.nan)
    refuser = (s_r, s_r >= 50, ans)
    # answered-only, the refuser looks better: the problem this guards against
    a_h = ver.ranking_metrics(y, s)["auc"]
    a_r = ver.ranking_metrics(y[ans], s[ans])["auc"]
    acc_h = np.mean((s >= 50) == (y == 1))
    assert a_r > a_h and np.mean((s[ans] >= 50) == (y[ans] == 1)) > acc_h
    h = coverage_aware_metrics(y, *honest)
    r = coverage_aware_metrics(y, *refuser)
    assert r["accuracy"] <= h["accuracy"]
    assert r["auc"] <= h["auc"]
    assert r["eer"] >= h["eer"]
    assert r[ver.TAR_KEY] <= h[ver.TAR_KEY]
    rc_h = risk_coverage(y, s >= 50, threshold_confidence(s, 50), honest[2])
    rc_r = risk_coverage(y, s_r >= 50, threshold_confidence(s_r, 50), ans)
    assert rc_r["aurc"] >= rc_h["aurc"] - 1e-12
    assert rc_r["risk_full_coverage"] >= rc_h["risk_full_coverage"]
    for clusters in (None, pc):
        test = coverage_aware_paired(y, refuser, honest, 200, seed=1, clusters=clusters)
        # the refuser is never significantly better: its difference is <= 0
        assert test["accuracy"]["diff"] <= 0
        assert test["auc"]["diff"] <= 0
