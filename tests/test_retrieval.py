"""Retrieval metrics against a brute-force port of torchreid's evaluator (stable sort)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reidbench.metrics.retrieval as retrieval
from reidbench.errors import UserError
from reidbench.metrics import RetrievalResult, evaluate_retrieval


def reference_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """torchreid's python `eval_market1501` + fast-reid's mINP, with a stable argsort.

    One extension: where a query keeps fewer gallery items than max_rank (junk
    removed), its CMC stays at 1 after the first match (torchreid's python
    version fails on the ragged list, its Cython version reads a stale buffer).
    Returns None when no query is valid (torchreid asserts).
    """
    num_q, num_g = distmat.shape
    if num_g < max_rank:
        max_rank = num_g
    indices = np.argsort(distmat, axis=1, kind="stable")
    matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    for q_idx in range(num_q):
        order = indices[q_idx]
        remove = (g_pids[order] == q_pids[q_idx]) & (g_camids[order] == q_camids[q_idx])
        raw_cmc = matches[q_idx][np.invert(remove)]
        if not np.any(raw_cmc):
            continue
        cmc = raw_cmc.cumsum()
        max_pos_idx = np.max(np.where(raw_cmc == 1))
        all_inp.append(cmc[max_pos_idx] / (max_pos_idx + 1.0))
        cmc[cmc > 1] = 1
        padded = np.ones(max_rank)
        padded[: min(max_rank, len(cmc))] = cmc[:max_rank]
        all_cmc.append(padded)
        num_rel = raw_cmc.sum()
        tmp_cmc = raw_cmc.cumsum()
        tmp_cmc = np.asarray([x / (i + 1.0) for i, x in enumerate(tmp_cmc)]) * raw_cmc
        all_ap.append(tmp_cmc.sum() / num_rel)
    if not all_cmc:
        return None
    cmc = np.asarray(all_cmc).sum(0) / len(all_cmc)
    return cmc, float(np.mean(all_ap)), float(np.mean(all_inp))


def assert_matches_reference(dist, qp, gp, qc, gc, max_rank=50):
    expected = reference_eval(dist, qp, gp, qc, gc, max_rank)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if expected is None:
            with pytest.raises(UserError, match="no query has a true match"):
                evaluate_retrieval(dist, qp, gp, qc, gc, max_rank)
            return None
        got = evaluate_retrieval(dist, qp, gp, qc, gc, max_rank)
    cmc, m_ap, m_inp = expected
    assert got.cmc.shape == cmc.shape
    np.testing.assert_allclose(got.cmc, cmc, rtol=0, atol=1e-6)
    assert got.mAP == pytest.approx(m_ap, abs=1e-6)
    assert got.mINP == pytest.approx(m_inp, abs=1e-6)
    return got


@st.composite
def problems(draw, max_q=8, max_g=24, max_value=4):
    """Small problems with heavy ties, distractors (pid 0 / -1), few cameras."""
    num_q = draw(st.integers(1, max_q))
    num_g = draw(st.integers(1, max_g))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    num_ids = draw(st.integers(1, 4))
    num_cams = draw(st.integers(1, 3))
    dist = rng.integers(0, max_value + 1, (num_q, num_g)).astype(np.float32)
    q_pids = rng.integers(-1, num_ids + 1, num_q)
    g_pids = rng.integers(-1, num_ids + 1, num_g)
    q_cams = rng.integers(0, num_cams, num_q)
    g_cams = rng.integers(0, num_cams, num_g)
    max_rank = draw(st.integers(1, num_g + 5))
    return dist, q_pids, g_pids, q_cams, g_cams, max_rank


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_equals_reference_with_heavy_ties(problem):
    assert_matches_reference(*problem)


@settings(max_examples=100, deadline=None)
@given(problems(max_q=6, max_g=40, max_value=1000), st.sampled_from(["f32", "f64", "f16", "int"]))
def test_equals_reference_any_dtype(problem, kind):
    dist, *rest = problem
    dist = {
        "f32": dist,
        "f64": dist.astype(np.float64) / 7,
        "f16": dist.astype(np.float16),
        "int": dist.astype(np.int32) - 500,
    }[kind]
    assert_matches_reference(dist, *rest)


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(problems(max_q=6, max_g=30, max_value=3), st.integers(0, 2**32 - 1))
def test_nan_inf_and_signed_zero_sort_like_numpy(problem, seed):
    dist, *rest = problem
    rng = np.random.default_rng(seed)
    specials = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0], dtype=np.float32)
    hit = rng.random(dist.shape) < 0.3
    dist = np.where(hit, specials[rng.integers(0, len(specials), dist.shape)], dist - 1.5)
    assert_matches_reference(dist.astype(np.float32), *rest)


def test_all_same_camera_means_every_match_is_junk():
    dist = np.zeros((2, 4), dtype=np.float32)
    pids = np.array([1, 1, 2, 2])
    with pytest.raises(UserError, match="no query has a true match"):
        evaluate_retrieval(dist, np.array([1, 2]), pids, np.zeros(2), np.zeros(4), max_rank=4)


def test_small_gallery_warns_and_cuts_max_rank():
    dist = np.array([[0.1, 0.2, 0.3]], dtype=np.float32)
    with pytest.warns(UserWarning, match="CMC is computed up to rank 3"):
        res = evaluate_retrieval(dist, np.array([5]), np.array([7, 5, 5]), [0], [1, 1, 2], 50)
    assert res.cmc.tolist() == [0.0, 1.0, 1.0]
    assert res.mAP == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert res.mINP == pytest.approx(2 / 3)


def test_hand_computed_example():
    # Query pid 1 cam 0. Gallery: junk (pid 1 cam 0), distractor, match, negative, match.
    dist = np.array([[0.0, 0.1, 0.2, 0.2, 0.9]], dtype=np.float32)
    res = evaluate_retrieval(dist, [1], [1, -1, 1, 3, 1], [0], [0, 1, 1, 2, 2], max_rank=4)
    # Valid order: distractor (r0), match (r1), negative (r2), match (r3).
    assert res.cmc.tolist() == [0.0, 1.0, 1.0, 1.0]
    assert res.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert res.mINP == pytest.approx(2 / 4)
    assert res.first_match_rank.tolist() == [1]
    assert res.num_valid_queries == 1 and res.num_queries == 1


def test_ties_follow_gallery_order():
    # The negative at index 0 ties with the match at index 1: it ranks first.
    res = evaluate_retrieval(np.zeros((1, 2)), [1], [2, 1], [0], [1, 1], max_rank=2)
    assert res.first_match_rank.tolist() == [1]
    res = evaluate_retrieval(np.zeros((1, 2)), [1], [1, 2], [0], [1, 1], max_rank=2)
    assert res.first_match_rank.tolist() == [0]


def _clustered(seed, num_q, num_g, sigma, dim=16, num_ids=40):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((num_ids, dim)).astype(np.float32)
    q_pids = rng.integers(1, num_ids, num_q)
    g_pids = rng.integers(-1, num_ids, num_g)
    qf = centers[np.abs(q_pids)] + sigma * rng.standard_normal((num_q, dim)).astype(np.float32)
    gf = centers[np.abs(g_pids)] + sigma * rng.standard_normal((num_g, dim)).astype(np.float32)
    dist = ((qf[:, None, :] - gf[None, :, :]) ** 2).sum(-1).astype(np.float32)
    return dist, q_pids, g_pids, rng.integers(0, 6, num_q), rng.integers(0, 6, num_g)


@pytest.mark.slow
@pytest.mark.parametrize("sigma", [0.3, 1.0, 3.0])
def test_medium_sizes_all_code_paths(monkeypatch, sigma):
    # Small units and groups force several units (threaded), several groups,
    # and both the sparse (few candidates) and the dense (sort whole rows) path.
    monkeypatch.setattr(retrieval, "_UNIT_ELEMENTS", 4096)
    monkeypatch.setattr(retrieval, "_GROUP_ITEMS", 300)
    dist, qp, gp, qc, gc = _clustered(sigma=sigma, seed=3, num_q=150, num_g=700)
    assert_matches_reference(dist, qp, gp, qc, gc)
    assert_matches_reference(dist.astype(np.float64), qp, gp, qc, gc)


def test_medium_heavy_ties_exact_path(monkeypatch):
    # Integer distances: most true matches tie with other items, so their ranks
    # come from the raw rows, here one positive at a time.
    monkeypatch.setattr(retrieval, "_EXACT_ELEMENTS", 1)
    monkeypatch.setattr(retrieval, "_UNIT_ELEMENTS", 4096)
    rng = np.random.default_rng(8)
    dist = rng.integers(0, 20, (80, 500)).astype(np.float32)
    pids = rng.integers(0, 12, 80), rng.integers(-1, 12, 500)
    cams = rng.integers(0, 3, 80), rng.integers(0, 3, 500)
    assert_matches_reference(dist, pids[0], pids[1], cams[0], cams[1])


def test_uniform_random_matrix():
    rng = np.random.default_rng(7)
    dist = rng.random((120, 900), dtype=np.float32)
    res = assert_matches_reference(
        dist,
        rng.integers(0, 30, 120),
        rng.integers(0, 30, 900),
        rng.integers(0, 3, 120),
        rng.integers(0, 3, 900),
    )
    assert res.num_valid_queries > 100


def test_string_pids_and_torch_tensor_input():
    torch = pytest.importorskip("torch")
    dist = np.array([[0.05, 0.1, 0.2], [0.1, 0.2, 0.3]], dtype=np.float32)
    res = evaluate_retrieval(
        torch.from_numpy(dist), ["a", "b"], ["b", "a", "a"], [0, 0], [1, 1, 0], max_rank=3
    )
    assert res.first_match_rank.tolist() == [1, 0]


def test_per_query_outputs_align_with_valid_queries():
    dist = np.array([[0.1, 0.9], [0.5, 0.5], [0.9, 0.1]], dtype=np.float32)
    res = evaluate_retrieval(dist, [1, 9, 2], [1, 2], [0, 0, 0], [1, 1], max_rank=2)
    assert res.valid_queries.tolist() == [0, 2]
    assert res.all_AP.tolist() == [1.0, 1.0]
    assert res.all_INP.tolist() == [1.0, 1.0]
    assert res.num_valid_queries == 2 and res.num_queries == 3


def test_result_key_and_attribute_access():
    res = evaluate_retrieval(np.array([[0.2, 0.1]]), [1], [1, 2], [0], [1, 1], max_rank=2)
    assert isinstance(res, RetrievalResult)
    assert res["mAP"] == res.mAP == 0.5
    assert res["mINP"] == res.mINP == 0.5
    assert res["cmc"] is res.cmc
    assert res["rank1"] == 0.0 and res["rank2"] == 1.0 and res.rank(10) == 1.0
    assert set(res.keys()) >= {"cmc", "mAP", "mINP", "rank1"}
    summary = res.to_dict()
    assert summary["rank1"] == 0.0 and summary["rank5"] == 1.0 and summary["cmc"] == [0.0, 1.0]
    assert summary["num_valid_queries"] == 1
    with pytest.raises(KeyError):
        res["nope"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.zeros(3), [1], [1], [0], [1]), "must be 2-D"),
        ((np.zeros((1, 2)), [1], [1], [0], [1, 1]), "g_pids must be a 1-D array"),
        ((np.zeros((1, 2)), [1, 2], [1, 1], [0], [1, 1]), "q_pids must be"),
        ((np.zeros((0, 2)), [], [1, 1], [], [1, 1]), "empty"),
        ((np.array([["a", "b"]]), [1], [1, 1], [0], [1, 1]), "numeric"),
    ],
)
def test_bad_inputs_are_user_errors(args, message):
    with pytest.raises(UserError, match=message):
        evaluate_retrieval(*args)


def test_bad_max_rank():
    with pytest.raises(UserError, match="max_rank"):
        evaluate_retrieval(np.zeros((1, 2)), [1], [1, 1], [0], [1, 1], max_rank=0)
