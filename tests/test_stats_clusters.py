"""Dependence-aware intervals and tests: equal to a brute-force loop over the same draws."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve

from reidbench.metrics import stats
from reidbench.metrics import verification as ver
from reidbench.metrics.clusters import as_pair_clusters, pair_clusters


def _pairs(n=60, ids=12, seed=0, distractors=0):
    """Pairs over `ids` people: half same-person, half different; some distractor b ends."""
    rng = np.random.default_rng(seed)
    pa = rng.integers(1, ids + 1, n)
    y = (np.arange(n) % 2).astype(np.int64)
    other = (pa + rng.integers(1, ids, n) - 1) % ids + 1  # never equal to pa
    pb = np.where(y == 1, pa, other)
    pb[:distractors] = 0
    y[:distractors] = 0
    img_b = np.where(pb == 0, rng.integers(0, 5, n), -1)
    person = rng.normal(size=ids + 1)
    s = y + 0.8 * person[pa] + rng.normal(size=n)
    s = np.round(s * 4) / 4  # ties
    return y, s, pa, pb, img_b


def _brute_weights(pc, ci_row, di_row=None):
    """Pair weights of one resample by a plain loop over pairs."""
    if di_row is not None:
        dc = np.bincount(di_row, minlength=pc.n_dyads)
        return np.array([dc[pc.dyad[i]] if pc.a[i] != pc.b[i] else 1.0 for i in range(pc.n)])
    cc = np.bincount(ci_row, minlength=pc.n_clusters)
    return np.array(
        [cc[pc.a[i]] * (cc[pc.b[i]] if pc.a[i] != pc.b[i] else 1) for i in range(pc.n)],
        dtype=float,
    )


def _brute_metrics(y, s, pred, w):
    out = {"accuracy": np.nan, "auc": np.nan, "eer": np.nan, ver.TAR_KEY: np.nan}
    if w.sum() == 0:
        return out
    out["accuracy"] = float(np.average(pred == y, weights=w))
    if w[y == 1].sum() == 0 or w[y == 0].sum() == 0:
        return out
    out["auc"] = roc_auc_score(y, s, sample_weight=w)
    fpr, tpr, thr = roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    out["eer"] = ver.eer_from_roc(fpr, tpr, thr)[0]
    out[ver.TAR_KEY] = ver.tar_at_far_from_roc(fpr, tpr, thr, 0.05)[0]
    return out


def test_pair_clusters_rules():
    pc = pair_clusters([1, 1, 2, 3, 0], [1, 2, 0, 0, 0], img_a=None, img_b=[9, 9, 7, 7, 8])
    # a-ends: identities 1, 1, 2, 3 and a distractor end without an image id (its own cluster)
    assert pc.a[0] == pc.b[0] == pc.a[1]  # same-person pair: one cluster
    assert pc.b[1] == pc.a[2]  # identity 2
    assert pc.b[2] == pc.b[3]  # distractor image 7 shared
    assert len({pc.b[2], pc.b[4], pc.a[4]}) == 3
    assert pc.two.tolist() == [False, True, True, True, True]
    assert pc.n_dyads == 4


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 3)), min_size=1))
@settings(max_examples=60, deadline=None)
def test_two_pairs_share_a_cluster_iff_they_share_a_person_or_distractor_image(rows):
    pa = np.array([r[0] for r in rows])
    pb = np.array([r[1] for r in rows])
    img = np.array([r[2] for r in rows])
    pc = pair_clusters(pa, pb, img_a=img + 100, img_b=img)

    def ends(i):
        out = set()
        for p, im in ((pa[i], img[i] + 100), (pb[i], img[i])):
            out.add(("p", p) if p > 0 else ("i", im))
        return out

    for i in range(len(rows)):
        for j in range(len(rows)):
            share = bool(ends(i) & ends(j))
            assert share == bool({pc.a[i], pc.b[i]} & {pc.a[j], pc.b[j]})


@given(
    st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=1, max_size=25),
    st.integers(0, 10_000),
)
@settings(max_examples=60, deadline=None)
def test_two_way_variance_is_the_sum_over_pairs_that_share_a_cluster(rows, seed):
    pc = as_pair_clusters(np.array(rows), len(rows))
    psi = np.random.default_rng(seed).normal(size=len(rows))
    brute = 0.0
    for i in range(pc.n):
        for j in range(pc.n):
            if {pc.a[i], pc.b[i]} & {pc.a[j], pc.b[j]}:
                brute += psi[i] * psi[j]
    got = stats.two_way_variance(psi, pc)
    assert got == pytest.approx(brute if brute > 0 else np.sum(psi**2), rel=1e-9, abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("distractors", [0, 7])
def test_cluster_bootstrap_equals_a_plain_loop_over_the_same_draws(distractors):
    y, s, pa, pb, img_b = _pairs(60, 12, seed=distractors, distractors=distractors)
    pred = s >= 0.5
    pc = pair_clusters(pa, pb, img_b=img_b, img_a=np.full(y.size, -1))
    b = 40
    ci, di = stats.cluster_bootstrap_indices(pc, b, seed=3)
    dist = stats.bootstrap_distribution(y, s, pred, b, 3, clusters=pc, far=0.05)
    dyad = stats.bootstrap_distribution(y, s, pred, b, 3, clusters=pc, dyads=True, far=0.05)
    brute_c = [_brute_metrics(y, s, pred, _brute_weights(pc, ci[k])) for k in range(b)]
    brute_d = [_brute_metrics(y, s, pred, _brute_weights(pc, None, di[k])) for k in range(b)]
    for name in ("accuracy", "auc", "eer", ver.TAR_KEY):
        want_c = np.array([r[name] for r in brute_c])
        want_d = np.array([r[name] for r in brute_d])
        np.testing.assert_allclose(dist[name], want_c, rtol=1e-9, atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(dyad[name], want_d, rtol=1e-9, atol=1e-12, equal_nan=True)
    # the interval: estimate +- z * sqrt(var_clusters - 2 var_dyads), clipped to [0, 1]
    got = stats.bootstrap_ci(y, s, pred, b, 3, clusters=pc)
    assert got["clusters"] == {"clusters": pc.n_clusters, "dyads": pc.n_dyads}
    for name in ("accuracy", "auc"):
        wc = np.array([r[name] for r in brute_c])
        wd = np.array([r[name] for r in brute_d])
        v = np.var(wc[np.isfinite(wc)], ddof=1) - 2 * np.var(wd[np.isfinite(wd)], ddof=1)
        v = v if v > 0 else np.var(wc[np.isfinite(wc)], ddof=1)
        est = _brute_metrics(y, s, pred, np.ones(y.size))[name]
        half = norm.ppf(0.975) * np.sqrt(v)
        ci_ = got["intervals"][name]
        assert ci_["estimate"] == pytest.approx(est)
        assert ci_["low"] == pytest.approx(max(0.0, est - half))
        assert ci_["high"] == pytest.approx(min(1.0, est + half))
        assert ci_["kind"] == "normal"
    # TAR@FAR: the percentile interval of the pigeonhole draws
    tar = got["intervals"][ver.TAR_KEY]
    draws = stats.bootstrap_distribution(y, s, pred, b, 3, clusters=pc)[ver.TAR_KEY]
    assert tar["kind"] == "percentile"
    assert [tar["low"], tar["high"]] == pytest.approx(np.percentile(draws, [2.5, 97.5]))


@pytest.mark.slow
def test_paired_auc_with_clusters_equals_a_plain_loop():
    y, s, pa, pb, _ = _pairs(50, 10, seed=4)
    s2 = s + np.random.default_rng(9).normal(size=y.size)
    pc = pair_clusters(pa, pb)
    b = 30
    ci, di = stats.cluster_bootstrap_indices(pc, b, seed=2)

    def diff(w):
        if w[y == 1].sum() == 0 or w[y == 0].sum() == 0:
            return np.nan
        return roc_auc_score(y, s, sample_weight=w) - roc_auc_score(y, s2, sample_weight=w)

    dc = np.array([diff(_brute_weights(pc, ci[k])) for k in range(b)])
    dd = np.array([diff(_brute_weights(pc, None, di[k])) for k in range(b)])
    v = np.nanvar(dc, ddof=1) - 2 * np.nanvar(dd, ddof=1)
    v = v if v > 0 else np.nanvar(dc, ddof=1)
    d0 = roc_auc_score(y, s) - roc_auc_score(y, s2)
    got = stats.paired_bootstrap_auc(y, s, s2, b, 2, clusters=pc)
    assert got["diff"] == pytest.approx(d0)
    assert got["se"] == pytest.approx(np.sqrt(v))
    assert got["p_value"] == pytest.approx(2 * norm.sf(abs(d0) / np.sqrt(v)))


@given(st.integers(5, 60), st.integers(0, 1000))
@settings(max_examples=25, deadline=None)
def test_one_cluster_per_pair_is_the_pair_bootstrap(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.round(rng.normal(size=n) + y, 1)
    pred = s > 0.5
    plain = stats.bootstrap_distribution(y, s, pred, 20, seed)
    single = stats.bootstrap_distribution(y, s, pred, 20, seed, clusters=np.arange(n))
    for k in plain:
        np.testing.assert_allclose(single[k], plain[k], rtol=1e-9, atol=1e-12, equal_nan=True)


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=80))
@settings(max_examples=60, deadline=None)
def test_clustered_mcnemar_with_singletons_is_the_chi_square(rows):
    a = np.array([r[0] for r in rows])
    b = np.array([r[1] for r in rows])
    got = stats.mcnemar(a, b, clusters=np.arange(a.size))
    bb, cc = int(np.sum(a & ~b)), int(np.sum(~a & b))
    assert (got["b"], got["c"]) == (bb, cc)
    if bb + cc == 0:
        assert got["p_value"] == 1.0
    else:
        assert got["z"] ** 2 == pytest.approx((bb - cc) ** 2 / (bb + cc))
    # default behaviour unchanged: the exact test
    assert stats.mcnemar(a, b)["test"].startswith("exact McNemar")


def test_clustered_mcnemar_is_wider_when_discordance_comes_in_person_blocks():
    # 10 people; each person's 6 pairs all favour the same system: strongly clustered
    pid = np.repeat(np.arange(1, 11), 6)
    favour_a = np.repeat(np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 1], bool), 6)
    a, b = favour_a.copy(), ~favour_a
    plain = stats.mcnemar(a, b)
    clustered = stats.mcnemar(a, b, clusters=pair_clusters(pid, pid))
    assert plain["p_value"] < 0.01 < clustered["p_value"]
