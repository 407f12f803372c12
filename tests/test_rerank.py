"""k-reciprocal re-ranking: bit-for-bit against straightforward ports of the reference code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reidbench.errors import UserError
from reidbench.metrics import (
    evaluate_features,
    evaluate_retrieval,
    k_reciprocal_distance,
    re_ranking,
    rerank_memory_bytes,
)


def _zhong_core(original_dist, query_num, k1, k2, lambda_value):
    """Zhong et al.'s loop (person-re-ranking, as copied by torchreid), stable argsort."""
    gallery_num = all_num = original_dist.shape[0]
    V = np.zeros_like(original_dist).astype(np.float32)
    initial_rank = np.argsort(original_dist, kind="stable").astype(np.int32)
    for i in range(all_num):
        forward_k_neigh_index = initial_rank[i, : k1 + 1]
        backward_k_neigh_index = initial_rank[forward_k_neigh_index, : k1 + 1]
        fi = np.where(backward_k_neigh_index == i)[0]
        k_reciprocal_index = forward_k_neigh_index[fi]
        k_reciprocal_expansion_index = k_reciprocal_index
        for j in range(len(k_reciprocal_index)):
            candidate = k_reciprocal_index[j]
            half = int(np.around(k1 / 2.0)) + 1
            candidate_forward_k_neigh_index = initial_rank[candidate, :half]
            candidate_backward_k_neigh_index = initial_rank[candidate_forward_k_neigh_index, :half]
            fi_candidate = np.where(candidate_backward_k_neigh_index == candidate)[0]
            candidate_k_reciprocal_index = candidate_forward_k_neigh_index[fi_candidate]
            common = np.intersect1d(candidate_k_reciprocal_index, k_reciprocal_index)
            if len(common) > 2.0 / 3 * len(candidate_k_reciprocal_index):
                k_reciprocal_expansion_index = np.append(
                    k_reciprocal_expansion_index, candidate_k_reciprocal_index
                )
        k_reciprocal_expansion_index = np.unique(k_reciprocal_expansion_index)
        weight = np.exp(-original_dist[i, k_reciprocal_expansion_index])
        V[i, k_reciprocal_expansion_index] = 1.0 * weight / np.sum(weight)
    original_dist = original_dist[:query_num,]
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(all_num):
            V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
    invIndex = [np.where(V[:, i] != 0)[0] for i in range(gallery_num)]
    jaccard_dist = np.zeros_like(original_dist, dtype=np.float32)
    for i in range(query_num):
        temp_min = np.zeros(shape=[1, gallery_num], dtype=np.float32)
        indNonZero = np.where(V[i, :] != 0)[0]
        indImages = [invIndex[ind] for ind in indNonZero]
        for j in range(len(indNonZero)):
            temp_min[0, indImages[j]] = temp_min[0, indImages[j]] + np.minimum(
                V[i, indNonZero[j]], V[indImages[j], indNonZero[j]]
            )
        jaccard_dist[i] = 1 - temp_min / (2.0 - temp_min)
    final_dist = jaccard_dist * (1 - lambda_value) + original_dist * lambda_value
    return final_dist[:query_num, query_num:]


def zhong_re_ranking(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3):
    """torchreid.utils.rerank.re_ranking (distance matrices in, squared first)."""
    original_dist = np.concatenate(
        [
            np.concatenate([q_q_dist, q_g_dist], axis=1),
            np.concatenate([q_g_dist.T, g_g_dist], axis=1),
        ],
        axis=0,
    )
    original_dist = np.power(original_dist, 2).astype(np.float32)
    original_dist = np.transpose(1.0 * original_dist / np.max(original_dist, axis=0))
    return _zhong_core(original_dist, q_g_dist.shape[0], k1, k2, lambda_value)


def fastreid_re_ranking(q_feat, g_feat, k1=20, k2=6, lambda_value=0.3):
    """fast-reid / AGW feature version (squared Euclidean, not squared again), float32 V."""
    query_num = q_feat.size(0)
    all_num = query_num + g_feat.size(0)
    feat = torch.cat([q_feat, g_feat])
    distmat = (
        torch.pow(feat, 2).sum(dim=1, keepdim=True).expand(all_num, all_num)
        + torch.pow(feat, 2).sum(dim=1, keepdim=True).expand(all_num, all_num).t()
    )
    distmat.addmm_(feat, feat.t(), beta=1, alpha=-2)
    original_dist = distmat.numpy()
    original_dist = np.transpose(original_dist / np.max(original_dist, axis=0))
    return _zhong_core(original_dist, query_num, k1, k2, lambda_value)


def _euclidean(a, b):
    return np.sqrt(np.maximum(((a[:, None] - b[None]) ** 2).sum(-1), 0)).astype(np.float32)


@pytest.mark.parametrize(
    ("seed", "num_q", "num_g", "k1", "k2"),
    [
        (0, 12, 60, 20, 6),
        (1, 7, 40, 5, 3),
        (2, 3, 9, 20, 6),  # fewer items than k1 + 1
        (3, 10, 30, 8, 1),  # no query expansion
        (4, 1, 1, 2, 2),
    ],
)
def test_distance_version_is_bit_identical_to_reference(seed, num_q, num_g, k1, k2):
    rng = np.random.default_rng(seed)
    qf = rng.standard_normal((num_q, 6)).astype(np.float32)
    gf = rng.standard_normal((num_g, 6)).astype(np.float32)
    qg, qq, gg = _euclidean(qf, gf), _euclidean(qf, qf), _euclidean(gf, gf)
    expected = zhong_re_ranking(qg, qq, gg, k1, k2, 0.3)
    got = re_ranking(qg, qq, gg, k1, k2, 0.3)
    assert got.dtype == np.float32 and got.shape == (num_q, num_g)
    assert np.array_equal(got, expected)


def test_ties_in_distance_are_broken_by_index():
    # Integer features on a grid: many equal distances, so neighbour order
    # depends on the tie rule (both sides use a stable sort).
    rng = np.random.default_rng(5)
    qf = rng.integers(0, 3, (8, 3)).astype(np.float32)
    gf = rng.integers(0, 3, (40, 3)).astype(np.float32)
    qg, qq, gg = _euclidean(qf, gf), _euclidean(qf, qf), _euclidean(gf, gf)
    assert np.array_equal(re_ranking(qg, qq, gg, 6, 3), zhong_re_ranking(qg, qq, gg, 6, 3))


@pytest.mark.parametrize(("seed", "num_q", "num_g"), [(0, 15, 70), (1, 4, 12)])
def test_feature_version_is_bit_identical_to_reference(seed, num_q, num_g):
    rng = np.random.default_rng(seed)
    qf = rng.standard_normal((num_q, 8)).astype(np.float32)
    gf = rng.standard_normal((num_g, 8)).astype(np.float32)
    expected = fastreid_re_ranking(torch.from_numpy(qf), torch.from_numpy(gf))
    assert np.array_equal(k_reciprocal_distance(qf, gf), expected)


def test_large_enough_for_partition_path_matches_reference():
    # More rows than the neighbour width: exercises argpartition + tie repair.
    rng = np.random.default_rng(9)
    qf = rng.integers(0, 4, (20, 2)).astype(np.float32)
    gf = rng.integers(0, 4, (120, 2)).astype(np.float32)
    expected = fastreid_re_ranking(torch.from_numpy(qf), torch.from_numpy(gf), k1=7, k2=3)
    assert np.array_equal(k_reciprocal_distance(qf, gf, k1=7, k2=3), expected)


def _two_camera_identities(seed=0, sigma=1.0, ids=30, per_g=12, per_q=2, dim=32):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((ids, dim)).astype(np.float32)
    g_pids = np.repeat(np.arange(ids), per_g)
    q_pids = np.repeat(np.arange(ids), per_q)
    gf = centers[g_pids] + sigma * rng.standard_normal((len(g_pids), dim)).astype(np.float32)
    qf = centers[q_pids] + sigma * rng.standard_normal((len(q_pids), dim)).astype(np.float32)
    return qf, gf, q_pids, g_pids, np.zeros(len(q_pids), int), np.ones(len(g_pids), int)


def test_rerank_improves_map_on_clustered_identities():
    # Many gallery images per identity: k-reciprocal neighbours pull in the
    # hard positives (the setting the method was designed for).
    qf, gf, qp, gp, qc, gc = _two_camera_identities()
    plain = evaluate_features(qf, gf, qp, gp, qc, gc, metric="euclidean")
    reranked = evaluate_features(qf, gf, qp, gp, qc, gc, rerank=True)
    assert plain.mAP < 0.8
    assert reranked.mAP > plain.mAP + 0.1
    assert reranked.rank(1) >= plain.rank(1)
    direct = evaluate_retrieval(k_reciprocal_distance(qf, gf), qp, gp, qc, gc)
    assert reranked.mAP == direct.mAP and np.array_equal(reranked.cmc, direct.cmc)


def test_memory_estimate_formula():
    # Market-1501: 3,368 queries, 15,913 gallery images.
    est = rerank_memory_bytes(3368, 15913)
    n = 3368 + 15913
    assert est > 4 * n * n + 4 * 3368 * 15913
    assert 1.5 * 2**30 < est < 2.5 * 2**30


def test_refuses_above_memory_limit_with_estimate():
    qf = np.ones((3, 4), np.float32)
    gf = np.ones((5, 4), np.float32)
    with pytest.raises(UserError, match=r"needs about .* GiB .* above the 1e-06 GiB limit"):
        k_reciprocal_distance(qf, gf, max_memory_gib=1e-6)
    with pytest.raises(UserError, match="GiB limit"):
        evaluate_features(
            qf, gf, [1, 2, 3], [1, 2, 3, 4, 5], [0] * 3, [1] * 5,
            rerank=True, rerank_max_memory_gib=1e-6,
        )  # fmt: skip


def test_msmt17_size_is_refused_by_default():
    with pytest.raises(UserError, match=r"11659 queries x 82161 gallery .* 8 GiB limit"):
        # The check runs before any allocation, so tiny stand-in features suffice
        # only if the shapes are real: use broadcast views (no memory).
        qf = np.broadcast_to(np.ones(1, np.float32), (11659, 1))
        gf = np.broadcast_to(np.ones(1, np.float32), (82161, 1))
        k_reciprocal_distance(qf, gf)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"k1": 0}, "k1 >= 1"), ({"k2": 0}, "k2 >= 1"), ({"lambda_value": 1.5}, "lambda")],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(UserError, match=message):
        k_reciprocal_distance(np.ones((2, 3)), np.ones((4, 3)), **kwargs)


def test_bad_features():
    with pytest.raises(UserError, match="NaN or infinite"):
        k_reciprocal_distance(np.array([[np.nan, 1.0]]), np.ones((2, 2)))
    with pytest.raises(UserError, match="dimensions"):
        k_reciprocal_distance(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(UserError, match="shapes do not fit"):
        re_ranking(np.ones((2, 3)), np.ones((2, 2)), np.ones((2, 2)))
