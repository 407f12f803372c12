"""Property tests: the curator's rules hold on random small datasets."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reidbench.errors import UserError
from reidbench.pairs import curate_pairs, pairset_hash
from tests.test_pairs_data import (
    available_by_stratum,
    balanced,
    brute_force_pairs,
    chosen_by_stratum,
    small_datasets,
)
from tests.test_pairs_triplets import brute_force_triplets

SPLITS = ["query-gallery", "test", "train"]
SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def _split_empty(ds, split) -> bool:
    if split == "query-gallery":
        return not any(r.pid > 0 for r in ds.query) or not any(r.pid > 0 for r in ds.gallery)
    pool = ds.train if split == "train" else ds.query + ds.gallery
    return not any(r.pid > 0 for r in pool)


@st.composite
def requests(draw: st.DrawFn):
    ds = draw(small_datasets())
    split = draw(st.sampled_from(SPLITS))
    same_camera = draw(st.booleans())
    distractors = split != "train" and draw(st.booleans())
    valid = brute_force_pairs(ds, split, same_camera, distractors)
    n_pos = sum(valid.values())
    pos = draw(st.integers(0, n_pos))
    neg = draw(st.integers(0, len(valid) - n_pos))
    seed = draw(st.integers(0, 2**40))
    return ds, split, same_camera, distractors, valid, pos, neg, seed


@pytest.mark.slow
@SETTINGS
@given(requests())
def test_curated_pairs_obey_every_rule(req):
    ds, split, same_camera, distractors, valid, pos, neg, seed = req
    kw = dict(
        positives=pos,
        negatives=neg,
        seed=seed,
        split=split,
        same_camera_positives=same_camera,
        distractor_negatives=distractors,
    )
    if _split_empty(ds, split):
        with pytest.raises(UserError, match=r"no labelled images|nothing to curate"):
            curate_pairs(ds, **kw)
        return
    if pos + neg == 0:
        with pytest.raises(UserError, match="nothing to curate"):
            curate_pairs(ds, **kw)
        return
    ps = curate_pairs(ds, **kw)
    rows = ps.table.to_pylist()
    # exact counts, ids = row index
    assert len(rows) == pos + neg
    assert sum(r["label"] for r in rows) == pos
    assert [r["pair_id"] for r in rows] == list(range(len(rows)))
    # every pair allowed by the rules, label consistent with pids, canonical orientation
    for r in rows:
        assert valid[(r["path_a"], r["path_b"])] == r["label"] == int(r["pid_a"] == r["pid_b"])
        if not same_camera:
            assert r["cam_a"] != r["cam_b"]
        assert r["pid_a"] != 0
        if r["pid_b"] == 0:
            assert distractors and r["label"] == 0
    # no duplicates, no twins
    assert len({frozenset((r["path_a"], r["path_b"])) for r in rows}) == len(rows)
    # balance within 1 across camera-pair strata unless a stratum is exhausted
    for label in (0, 1):
        assert balanced(chosen_by_stratum(rows, label), available_by_stratum(ds, valid, label))
    # determinism, independent of listing order
    rev = dataclasses.replace(
        ds, query=ds.query[::-1], gallery=ds.gallery[::-1], train=ds.train[::-1]
    )
    again = curate_pairs(rev, **kw)
    assert again.table.equals(ps.table) and again.content_hash == ps.content_hash


@pytest.mark.slow
@SETTINGS
@given(requests(), st.sampled_from(["positives", "negatives"]))
def test_asking_for_more_than_exists_is_refused(req, which):
    ds, split, same_camera, distractors, valid, _, _, seed = req
    if _split_empty(ds, split):
        return
    n_pos = sum(valid.values())
    have = n_pos if which == "positives" else len(valid) - n_pos
    kw = {"positives": 0, "negatives": 0, which: have + 1}
    with pytest.raises(UserError, match=f"only {have} "):
        curate_pairs(
            ds,
            **kw,
            seed=seed,
            split=split,
            same_camera_positives=same_camera,
            distractor_negatives=distractors,
        )


@pytest.mark.slow
@SETTINGS
@given(requests(), st.data())
def test_hash_changes_when_any_pair_changes(req, data):
    ds, split, same_camera, distractors, _, pos, neg, seed = req
    if _split_empty(ds, split) or pos + neg == 0:
        return
    ps = curate_pairs(
        ds,
        positives=pos,
        negatives=neg,
        seed=seed,
        split=split,
        same_camera_positives=same_camera,
        distractor_negatives=distractors,
    )
    row = data.draw(st.integers(0, ps.table.num_rows - 1))
    name = data.draw(st.sampled_from(ps.table.column_names))
    col = ps.table.column(name).to_pylist()
    col[row] = col[row] + "_" if isinstance(col[row], str) else col[row] + 1
    field = ps.table.schema.field(name)
    changed = ps.table.set_column(
        ps.table.schema.get_field_index(name), field, pa.array(col, field.type)
    )
    assert pairset_hash(changed) != ps.content_hash


@settings(max_examples=40, deadline=None, database=None)
@given(requests(), st.integers(0, 5))
def test_triplets_follow_the_rules_or_are_refused(req, n):
    ds, split, same_camera, distractors, _, pos, neg, seed = req
    if _split_empty(ds, split) or pos + neg + n == 0:
        return
    cap = brute_force_triplets(ds, split, same_camera)
    kw = dict(
        positives=pos,
        negatives=neg,
        seed=seed,
        split=split,
        same_camera_positives=same_camera,
        distractor_negatives=distractors,
        triplets=n,
    )
    if (n + 1) // 2 > len(cap["all-same"]) or n // 2 > len(cap["two-same"]):
        with pytest.raises(UserError, match="triplets"):
            curate_pairs(ds, **kw)
        return
    ps = curate_pairs(ds, **kw)
    rows = ps.table.to_pylist()
    assert len(ps.triplets) == n
    assert len({frozenset((r["path_a"], r["path_b"])) for r in rows}) == len(rows)
    sets = []
    for k, ids in enumerate(ps.triplets):
        images = frozenset(p for i in ids for p in (rows[i]["path_a"], rows[i]["path_b"]))
        assert images in cap["all-same" if k % 2 == 0 else "two-same"]
        sets.append(images)
        for i in ids:
            r = rows[i]
            assert r["label"] == int(r["pid_a"] == r["pid_b"])
            assert same_camera or r["cam_a"] != r["cam_b"]
    assert len(set(sets)) == n
