"""Pair scores from embedders (cosine, the 0-1 map) and the hard-negative miner adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reidbench.datasets import load_dataset
from reidbench.models import (
    EmbedderMiner,
    FeatureCache,
    cosine_to_unit,
    embedder_miner,
    extract_features,
    load_embedder,
    pair_scores,
)
from tests.test_models_fixtures import Counting, market_tree


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return market_tree(tmp_path_factory.mktemp("data") / "Market-1501-v15.09.15")


@given(st.floats(-1.0, 1.0))
def test_cosine_to_unit_is_the_documented_affine_map(c: float):
    u = cosine_to_unit(c)
    assert isinstance(u, float)
    assert 0.0 <= u <= 1.0
    assert u == pytest.approx((c + 1.0) / 2.0)


def test_cosine_to_unit_arrays():
    np.testing.assert_allclose(cosine_to_unit(np.array([-1.0, 0.0, 1.0])), [0.0, 0.5, 1.0])


@pytest.mark.slow
def test_pair_scores_equal_brute_force_and_embed_each_image_once(market: Path, tmp_path: Path):
    ds = load_dataset(market)
    q = [r.path for r in ds.query]
    g = [r.path for r in ds.gallery]
    rng = np.random.default_rng(0)
    a = [q[i] for i in rng.integers(0, len(q), 40)]
    b = [g[i] for i in rng.integers(0, len(g), 40)]
    counted = Counting(load_embedder("handcrafted"))
    scores = pair_scores(counted.emb, market, a, b, batch_size=7)
    assert counted.prepared == len(set(a) | set(b))
    assert scores.shape == (40,) and scores.dtype == np.float64
    assert (scores >= -1).all() and (scores <= 1).all()
    fa = extract_features(load_embedder("handcrafted"), [market / p for p in a])
    fb = extract_features(load_embedder("handcrafted"), [market / p for p in b])
    want = [float(np.dot(x.astype(np.float64), y)) for x, y in zip(fa, fb, strict=True)]
    np.testing.assert_allclose(scores, want, atol=1e-6)
    with FeatureCache(tmp_path / "cache") as cache:
        pair_scores(counted.emb, market, a, b, cache=cache)
        counted.prepared = 0
        again = pair_scores(counted.emb, market, a, b, cache=cache)
    assert counted.prepared == 0
    np.testing.assert_allclose(again, scores, atol=1e-6)


def test_pair_scores_validation(market: Path):
    emb = load_embedder("handcrafted")
    with pytest.raises(ValueError, match="path_a has 1 entries but path_b has 0"):
        pair_scores(emb, market, ["query/x.jpg"], [])
    assert pair_scores(emb, market, [], []).shape == (0,)


def test_same_identity_scores_higher(market: Path):
    ds = load_dataset(market)
    pos = [
        (q.path, g.path)
        for q in ds.query
        for g in ds.gallery
        if q.pid == g.pid and q.camid != g.camid
    ]
    neg = [(q.path, g.path) for q in ds.query for g in ds.gallery if q.pid != g.pid]
    emb = load_embedder("handcrafted")
    sp = pair_scores(emb, market, *zip(*pos, strict=True))
    sn = pair_scores(emb, market, *zip(*neg, strict=True))
    assert sp.mean() > sn.mean() + 0.1  # identities differ by clothing colour


@pytest.mark.slow
def test_embedder_miner_protocol_and_hard_negatives(market: Path, tmp_path: Path):
    from reidbench.pairs import NegativeMiner, curate_pairs

    ds = load_dataset(market)
    emb = load_embedder("handcrafted")
    with FeatureCache(tmp_path / "cache") as cache:
        miner = embedder_miner(emb, market, cache)
        assert isinstance(miner, EmbedderMiner) and isinstance(miner, NegativeMiner)
        assert miner.name == emb.fingerprint
        feats = miner.features(ds.gallery[:5])
        np.testing.assert_array_equal(
            feats, extract_features(emb, [market / r.path for r in ds.gallery[:5]])
        )
        hard = curate_pairs(
            ds, positives=10, negatives=30, seed=1, negative_miner=miner, hard_fraction=1.0
        )
    plain = curate_pairs(ds, positives=10, negatives=30, seed=1)
    assert hard.meta["hard_negatives"]["miner"] == emb.fingerprint
    assert hard.meta["counts"]["hard_negatives"] == 30

    def neg_scores(pairset) -> np.ndarray:
        t = pairset.table
        mask = np.asarray(t.column("label").to_numpy()) == 0
        a = np.asarray(t.column("path_a").to_pylist(), dtype=object)[mask]
        b = np.asarray(t.column("path_b").to_pylist(), dtype=object)[mask]
        return pair_scores(emb, market, list(a), list(b))

    assert neg_scores(hard).mean() > neg_scores(plain).mean()


def test_pairs_cli_hard_negatives(run_cli, market: Path, tmp_path: Path):
    from reidbench.pairs import read_pairs

    out = tmp_path / "pairs.parquet"
    res = run_cli(
        "pairs",
        market,
        "--out",
        out,
        "--positives",
        "10",
        "--negatives",
        "20",
        "--hard-negatives",
        "handcrafted",
        "--hard-fraction",
        "0.5",
        "--cache",
        tmp_path / "cache",
    )
    assert res.code == 0, res.err
    assert "hard negatives: 10 mined with handcrafted-" in res.out
    meta = read_pairs(out).meta
    assert meta["hard_negatives"]["miner"] == load_embedder("handcrafted").fingerprint
    bad = run_cli(
        "pairs",
        market,
        "--out",
        tmp_path / "p2.parquet",
        "--positives",
        "1",
        "--negatives",
        "1",
        "--weights",
        "x.pth",
    )
    assert bad.code == 2 and "--weights needs --hard-negatives" in bad.err
    unknown = run_cli(
        "pairs",
        market,
        "--out",
        tmp_path / "p3.parquet",
        "--positives",
        "1",
        "--negatives",
        "1",
        "--hard-negatives",
        "resnet",
    )
    assert unknown.code == 2 and "unknown model 'resnet'" in unknown.err
    assert not (tmp_path / "p3.parquet").exists()
