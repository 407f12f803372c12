"""evaluate_features: chunked features -> metrics equals the full-matrix evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from reidbench.errors import UserError
from reidbench.metrics import evaluate_features, evaluate_retrieval, pairwise_distance
from tests.test_retrieval import reference_eval


def _exact_features(rng, n, dim=12, ids=6):
    """Rows with four entries of +-1: norm 2, so cosine and Euclidean distances are exact
    in float32 whatever the BLAS blocking (chunked and full products agree bit for bit),
    and equal distances (ties) are common."""
    feats = np.zeros((n, dim), np.float32)
    for row in feats:
        cols = rng.choice(dim, 4, replace=False)
        row[cols] = rng.choice([-1.0, 1.0], 4)
    return feats, rng.integers(0, ids, n), rng.integers(0, 3, n)


def _same(a, b):
    assert np.array_equal(a.cmc, b.cmc)
    assert a.mAP == b.mAP and a.mINP == b.mINP
    assert np.array_equal(a.all_AP, b.all_AP) and np.array_equal(a.valid_queries, b.valid_queries)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1000])
def test_chunked_equals_full_matrix(metric, chunk_size):
    rng = np.random.default_rng(11)
    qf, qp, qc = _exact_features(rng, 64)
    gf, gp, gc = _exact_features(rng, 300)
    full = evaluate_retrieval(pairwise_distance(qf, gf, metric), qp, gp, qc, gc)
    chunked = evaluate_features(qf, gf, qp, gp, qc, gc, metric=metric, chunk_size=chunk_size)
    _same(chunked, full)


def test_distances_follow_torchreid_definitions():
    rng = np.random.default_rng(2)
    qf, qp, qc = _exact_features(rng, 20)
    gf, gp, gc = _exact_features(rng, 90)
    scale = rng.integers(1, 4, (20, 1)).astype(np.float32)  # cosine ignores the norm
    cosine = 1 - (qf / 2) @ (gf / 2).T
    euclid = (qf**2).sum(1)[:, None] + (gf**2).sum(1)[None, :] - 2 * qf @ gf.T
    assert np.array_equal(pairwise_distance(qf * scale, gf, "cosine"), cosine)
    assert np.array_equal(pairwise_distance(qf, gf, "euclidean"), euclid)
    for metric, dist in (("cosine", cosine), ("euclidean", euclid)):
        got = evaluate_features(qf * scale, gf, qp, gp, qc, gc, metric=metric, chunk_size=3)
        cmc, m_ap, m_inp = reference_eval(dist, qp, gp, qc, gc)
        np.testing.assert_allclose(got.cmc, cmc, atol=1e-6)
        assert got.mAP == pytest.approx(m_ap, abs=1e-6)
        assert got.mINP == pytest.approx(m_inp, abs=1e-6)


def test_zero_feature_row_does_not_become_nan():
    qf = np.array([[0.0, 0.0], [1.0, 0.0]], np.float32)
    gf = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    assert pairwise_distance(qf, gf).tolist() == [[1.0, 1.0], [0.0, 1.0]]


class Recorder:
    def __init__(self):
        self.events = []

    def start(self, description, total):
        self.events.append(("start", total))

    def advance(self, n=1, **fields):
        self.events.append(("advance", n))

    def finish(self):
        self.events.append(("finish",))


def test_progress_reports_queries():
    rng = np.random.default_rng(3)
    qf, qp, qc = _exact_features(rng, 10)
    gf, gp, gc = _exact_features(rng, 40)
    rec = Recorder()
    evaluate_features(qf, gf, qp, gp, qc, gc, max_rank=10, chunk_size=4, progress=rec)
    steps = [("advance", 4), ("advance", 4), ("advance", 2)]
    assert rec.events == [("start", 10), *steps, ("finish",)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "manhattan"}, "unknown distance metric"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_options(kwargs, message):
    rng = np.random.default_rng(4)
    qf, qp, qc = _exact_features(rng, 5)
    gf, gp, gc = _exact_features(rng, 9)
    with pytest.raises(UserError, match=message):
        evaluate_features(qf, gf, qp, gp, qc, gc, max_rank=5, **kwargs)


def test_bad_feature_shapes():
    with pytest.raises(UserError, match="dimensions"):
        evaluate_features(np.ones((2, 3)), np.ones((4, 5)), [1, 2], [1, 2, 3, 4], [0, 0], [1] * 4)
    with pytest.raises(UserError, match="query features must be a non-empty"):
        evaluate_features(np.ones(3), np.ones((4, 3)), [1], [1, 2, 3, 4], [0], [1] * 4)
    with pytest.raises(UserError, match="g_pids"):
        evaluate_features(np.ones((2, 3)), np.ones((4, 3)), [1, 2], [1, 2], [0, 0], [1] * 4)
