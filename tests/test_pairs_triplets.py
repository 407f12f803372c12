from __future__ import annotations

import itertools

import pytest

from reidbench.datasets.base import Dataset, ImageRecord
from reidbench.errors import UserError
from reidbench.pairs import curate_pairs
from reidbench.pairs.pools import build_pools, enumerate_positives
from reidbench.pairs.triplets import ALL_SAME, TWO_SAME, triplet_capacity
from tests.test_pairs_data import make_dataset


def brute_force_triplets(ds: Dataset, split: str, same_camera: bool) -> dict[str, set]:
    """All valid triplets by the documented rules, as frozensets of paths."""

    def cams_ok(*recs: ImageRecord) -> bool:
        return same_camera or len({r.camid for r in recs}) == len(recs)

    out: dict[str, set] = {ALL_SAME: set(), TWO_SAME: set()}
    if split == "query-gallery":
        gallery = [r for r in ds.gallery if r.pid > 0]
        for a in ds.query:
            for b, c in itertools.permutations(gallery, 2):
                if not cams_ok(a, b, c) or a.pid != b.pid:
                    continue
                if c.pid == a.pid:
                    out[ALL_SAME].add(frozenset((a.path, b.path, c.path)))
                else:
                    out[TWO_SAME].add(frozenset((a.path, b.path, c.path)))
        return out
    pool = [r for r in (ds.train if split == "train" else ds.query + ds.gallery) if r.pid > 0]
    for trio in itertools.combinations(pool, 3):
        if not cams_ok(*trio):
            continue
        pids = {r.pid for r in trio}
        kind = {1: ALL_SAME, 2: TWO_SAME}.get(len(pids))
        if kind:
            out[kind].add(frozenset(r.path for r in trio))
    return out


@pytest.mark.parametrize("split", ["query-gallery", "test", "train"])
@pytest.mark.parametrize("same_camera", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_capacity_matches_brute_force(split, same_camera, seed):
    ds = make_dataset(n_ids=4, query_per_id=2, gallery_per_id=3, cams=3, seed=seed, train_ids=4)
    pools = build_pools(ds, split, same_camera=same_camera, distractors=False)
    pos_i, pos_j = enumerate_positives(pools, same_camera)
    expect = brute_force_triplets(ds, split, same_camera)
    assert triplet_capacity(pools, pos_i, pos_j) == {k: len(v) for k, v in expect.items()}


def _check_triplets(ds, ps, split, same_camera=False):
    rows = ps.table.to_pylist()
    valid = brute_force_triplets(ds, split, same_camera)
    qpaths = {r.path for r in ds.query}
    seen = set()
    for k, (ab, bc, ac) in enumerate(ps.triplets):
        rab, rbc, rac = rows[ab], rows[bc], rows[ac]
        s_ab = {rab["path_a"], rab["path_b"]}
        s_bc = {rbc["path_a"], rbc["path_b"]}
        s_ac = {rac["path_a"], rac["path_b"]}
        (a,) = s_ab & s_ac
        (b,) = s_ab & s_bc
        (c,) = s_bc & s_ac
        assert len({a, b, c}) == 3
        images = frozenset((a, b, c))
        assert images not in seen
        seen.add(images)
        kind = ALL_SAME if k % 2 == 0 else TWO_SAME
        assert images in valid[kind]
        labels = (rab["label"], rbc["label"], rac["label"])
        assert labels == ((1, 1, 1) if kind == ALL_SAME else (1, 0, 0))
        if split == "query-gallery":
            assert a in qpaths and b not in qpaths and c not in qpaths
            assert rab["path_a"] == a and rac["path_a"] == a
    return seen


@pytest.mark.parametrize("split", ["query-gallery", "test", "train"])
def test_triplets_are_valid_distinct_and_alternate(split):
    ds = make_dataset(n_ids=10, cams=4, train_ids=10)
    ps = curate_pairs(ds, positives=20, negatives=20, split=split, triplets=12, seed=5)
    assert len(ps.triplets) == 12
    assert ps.meta["triplet_kinds"] == {ALL_SAME: 6, TWO_SAME: 6}
    _check_triplets(ds, ps, split)
    counts = ps.meta["counts"]
    assert counts["pairs"] == 40 + counts["triplet_pairs_added"] == ps.table.num_rows
    keys = {frozenset((r["path_a"], r["path_b"])) for r in ps.table.to_pylist()}
    assert len(keys) == ps.table.num_rows  # triplet pairs never duplicate a pair


def test_triplets_reuse_drawn_pairs():
    # With every pair already drawn, triplets add nothing.
    ds = make_dataset(n_ids=3, query_per_id=1, gallery_per_id=3, cams=3, train_ids=0)
    ps0 = curate_pairs(ds, positives=1, negatives=1, split="test")
    pos, neg = ps0.meta["available"]["positives"], ps0.meta["available"]["negatives"]
    ps = curate_pairs(ds, positives=pos, negatives=neg, split="test", triplets=2)
    assert ps.meta["counts"]["triplet_pairs_added"] == 0
    assert ps.table.num_rows == pos + neg
    _check_triplets(ds, ps, "test")


def test_every_possible_triplet_can_be_drawn():
    ds = make_dataset(n_ids=3, query_per_id=1, gallery_per_id=3, cams=3, train_ids=0, seed=2)
    pools = build_pools(ds, "query-gallery", same_camera=False, distractors=False)
    cap = triplet_capacity(pools, *enumerate_positives(pools, False))
    n = min(2 * cap[ALL_SAME] - 1, 2 * cap[TWO_SAME] + 1)
    assert n > 0
    ps = curate_pairs(ds, positives=0, negatives=1, triplets=n)
    got = _check_triplets(ds, ps, "query-gallery")
    assert len(got) == n


def test_only_triplets_may_hold_gallery_gallery_pairs():
    ds = make_dataset(n_ids=8, cams=4)
    ps = curate_pairs(ds, positives=10, negatives=10, triplets=6)
    qpaths = {r.path for r in ds.query}
    bc_ids = {t[1] for t in ps.triplets}
    for r in ps.table.to_pylist():
        if r["path_a"] not in qpaths:
            assert r["pair_id"] in bc_ids


def test_too_many_triplets_is_a_clear_error():
    ds = make_dataset(n_ids=2, query_per_id=1, gallery_per_id=2, cams=3, train_ids=0)
    with pytest.raises(UserError, match=r"distinct cross-camera .* triplets; .*--same-camera"):
        curate_pairs(ds, positives=0, negatives=1, triplets=50)
