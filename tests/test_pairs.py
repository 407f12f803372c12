from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import reidbench.pairs.pools as pools_mod
from reidbench.datasets.base import Dataset, ImageRecord
from reidbench.errors import UserError
from reidbench.pairs import (
    PairSet,
    curate_pairs,
    pairset_hash,
    read_pairs,
    write_pairs,
)
from reidbench.pairs.pools import build_pools, negative_capacity, waterfill
from reidbench.pairs.rng import StableRng
from reidbench.tables import PAIRS_SCHEMA
from tests.test_pairs_data import (
    available_by_stratum,
    balanced,
    brute_force_pairs,
    chosen_by_stratum,
    make_dataset,
)


def rows_of(ps: PairSet) -> list[dict]:
    return ps.table.to_pylist()


@pytest.mark.parametrize("split", ["query-gallery", "test", "train"])
def test_exact_counts_valid_pairs_and_balance(split):
    ds = make_dataset()
    ps = curate_pairs(ds, positives=40, negatives=60, split=split, seed=1)
    rows = rows_of(ps)
    assert ps.table.schema.equals(PAIRS_SCHEMA)
    assert [r["pair_id"] for r in rows] == list(range(100))
    assert sum(r["label"] for r in rows) == 40
    valid = brute_force_pairs(ds, split, same_camera=False, distractors=False)
    for r in rows:
        assert valid[(r["path_a"], r["path_b"])] == r["label"]
        assert r["label"] == int(r["pid_a"] == r["pid_b"])
        assert r["cam_a"] != r["cam_b"]
    keys = {frozenset((r["path_a"], r["path_b"])) for r in rows}
    assert len(keys) == 100  # no duplicates and no (a, b)/(b, a) twins
    for label in (0, 1):
        assert balanced(chosen_by_stratum(rows, label), available_by_stratum(ds, valid, label))
    assert ps.meta["counts"]["positives"] == 40
    assert ps.meta["camera_pairs"]["positives"] == dict(chosen_by_stratum(rows, 1))
    assert ps.meta["camera_pairs"]["negatives"] == dict(chosen_by_stratum(rows, 0))
    assert ps.meta["content_hash"] == pairset_hash(ps.table)


def test_query_gallery_orientation_and_unordered_rule():
    ds = make_dataset(distractors=8)
    qpaths = {r.path for r in ds.query}
    gpaths = {r.path for r in ds.gallery}
    ps = curate_pairs(ds, positives=20, negatives=80, distractor_negatives=True)
    for r in rows_of(ps):
        assert r["path_a"] in qpaths and r["path_b"] in gpaths
    ps = curate_pairs(ds, positives=20, negatives=200, split="test", distractor_negatives=True)
    n_distractor = 0
    for r in rows_of(ps):
        assert r["pid_a"] != 0
        if r["pid_b"] == 0:
            n_distractor += 1
        else:
            assert r["path_a"] < r["path_b"]
    assert n_distractor > 0


def test_distractors_only_with_flag_and_only_as_negatives():
    ds = make_dataset(distractors=30, n_ids=4)
    off = curate_pairs(ds, positives=5, negatives=80)
    assert all(r["pid_b"] != 0 for r in rows_of(off))
    on = curate_pairs(ds, positives=5, negatives=150, distractor_negatives=True)
    d = [r for r in rows_of(on) if 0 in (r["pid_a"], r["pid_b"])]
    assert d and all(r["pid_b"] == 0 and r["label"] == 0 for r in d)
    assert on.meta["counts"]["distractor_negatives"] == len(d)


def test_same_camera_flag_allows_same_camera_pairs():
    ds = make_dataset(cams=2, n_ids=10)
    total_pos = sum(brute_force_pairs(ds, "query-gallery", True, False).values())
    ps = curate_pairs(ds, positives=total_pos, negatives=10, same_camera_positives=True)
    rows = rows_of(ps)
    assert any(r["cam_a"] == r["cam_b"] for r in rows if r["label"] == 1)
    assert ps.meta["rules"]["positives"] == "same pid, any camera"


def test_whole_supply_can_be_requested():
    ds = make_dataset(n_ids=5, gallery_per_id=3)
    valid = brute_force_pairs(ds, "query-gallery", False, False)
    pos = sum(valid.values())
    neg = len(valid) - pos
    ps = curate_pairs(ds, positives=pos, negatives=neg)
    got = {(r["path_a"], r["path_b"]): r["label"] for r in rows_of(ps)}
    assert got == valid
    assert ps.meta["available"] == {"positives": pos, "negatives": neg}


@pytest.mark.slow
def test_rejection_sampling_path_gives_valid_distinct_pairs(monkeypatch):
    monkeypatch.setattr(pools_mod, "ENUMERATE_LIMIT", 0)  # force rejection everywhere it is safe
    ds = make_dataset(n_ids=40, gallery_per_id=10, cams=3)
    ps = curate_pairs(ds, positives=10, negatives=300, split="test")
    valid = brute_force_pairs(ds, "test", False, False)
    rows = rows_of(ps)
    assert len({(r["path_a"], r["path_b"]) for r in rows}) == 310
    assert all(valid[(r["path_a"], r["path_b"])] == r["label"] for r in rows)
    assert balanced(chosen_by_stratum(rows, 0), available_by_stratum(ds, valid, 0))


def test_rejection_sampling_is_roughly_uniform(monkeypatch):
    # 2 query x 40 gallery images of other people in one stratum: 80 negatives, drawn
    # 20 at a time by rejection 400 times; each pair should come up ~100 times.
    monkeypatch.setattr(pools_mod, "ENUMERATE_LIMIT", 0)
    q = [ImageRecord(f"q{k}.jpg", 1, 0) for k in range(2)]
    g = [ImageRecord(f"g{k:02d}.jpg", 2 + k, 1) for k in range(40)]
    ds = Dataset("custom", Path("/d"), [], q, g, 2)
    pools = build_pools(ds, "query-gallery", same_camera=False, distractors=False)
    counts = np.zeros(80)
    for t in range(400):
        keys = pools_mod.sample_negatives(
            pools, 1, 20, 80, np.zeros(0, np.int64), StableRng(t, "u")
        )
        assert np.unique(keys).size == 20
        counts[keys] += 1
    assert counts.sum() == 8000
    # chi-square with 79 dof: the 99.9th percentile is about 124.8
    chi2 = ((counts - 100) ** 2 / 100).sum()
    assert chi2 < 125


def test_determinism_ignores_listing_order(tmp_path):
    ds = make_dataset(distractors=5)
    shuffled = dataclasses.replace(
        ds,
        query=random.Random(1).sample(ds.query, len(ds.query)),
        gallery=random.Random(2).sample(ds.gallery, len(ds.gallery)),
    )
    kw = dict(positives=30, negatives=30, seed=7, triplets=4, distractor_negatives=True)
    a, b = curate_pairs(ds, **kw), curate_pairs(shuffled, **kw)
    assert a.table.equals(b.table)
    assert a.meta == b.meta
    write_pairs(tmp_path / "a.parquet", a)
    write_pairs(tmp_path / "b.parquet", b)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    c = curate_pairs(ds, **{**kw, "seed": 8})
    assert c.content_hash != a.content_hash


def test_positives_do_not_depend_on_negative_count():
    ds = make_dataset()
    few = curate_pairs(ds, positives=30, negatives=5)
    many = curate_pairs(ds, positives=30, negatives=120)

    def pos(ps):
        return {(r["path_a"], r["path_b"]) for r in rows_of(ps) if r["label"]}

    assert pos(few) == pos(many)


def test_labels_are_interleaved():
    ps = curate_pairs(make_dataset(), positives=50, negatives=50)
    labels = ps.table.column("label").to_pylist()
    assert labels[:50].count(1) not in (0, 50)


# ------------------------------------------------------------------ water-filling


def test_waterfill_examples():
    rng = StableRng(0, "t")
    assert waterfill(np.array([10, 10, 10]), 9, rng).tolist() == [3, 3, 3]
    assert waterfill(np.array([1, 10, 10]), 9, rng).tolist() == [1, 4, 4]
    assert waterfill(np.array([0, 2, 100]), 50, rng).tolist() == [0, 2, 48]
    alloc = waterfill(np.array([5, 5, 5, 5]), 10, rng)
    assert sorted(alloc.tolist()) == [2, 2, 3, 3]
    with pytest.raises(ValueError):
        waterfill(np.array([1, 1]), 3, rng)


# ------------------------------------------------------------------ capacities


@pytest.mark.parametrize("split", ["query-gallery", "test", "train"])
@pytest.mark.parametrize("same_camera", [False, True])
def test_negative_capacity_matches_brute_force(split, same_camera):
    ds = make_dataset(n_ids=6, distractors=4, cams=3, seed=3)
    distractors = split != "train"
    pools = build_pools(ds, split, same_camera=same_camera, distractors=distractors)
    cap = negative_capacity(pools)
    valid = brute_force_pairs(ds, split, same_camera, distractors)
    expect = available_by_stratum(ds, valid, 0)
    got = {pools.stratum_name(s): int(cap[s]) for s in np.flatnonzero(cap)}
    assert got == dict(expect)


# ------------------------------------------------------------------ errors


def test_too_many_positives_says_how_many_and_which_flag():
    ds = make_dataset(n_ids=3, cams=2)
    valid = brute_force_pairs(ds, "query-gallery", False, False)
    have = sum(valid.values())
    with pytest.raises(UserError) as exc:
        curate_pairs(ds, positives=have + 1, negatives=0)
    msg = str(exc.value)
    assert f"only {have} cross-camera positive pairs" in msg
    assert "--same-camera" in msg and str(ds.root) in msg
    assert "\n" not in msg


def test_too_many_negatives_mentions_distractors():
    ds = make_dataset(n_ids=3, cams=2, distractors=4)
    have = len(brute_force_pairs(ds, "query-gallery", False, False)) - sum(
        brute_force_pairs(ds, "query-gallery", False, False).values()
    )
    with pytest.raises(UserError, match=f"only {have} cross-camera negative pairs.*--distractors"):
        curate_pairs(ds, positives=0, negatives=have + 1)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"split": "val"}, "unknown split 'val'"),
        ({"positives": -1}, "--positives must be"),
        ({"positives": 0, "negatives": 0}, "nothing to curate"),
        ({"split": "train", "distractor_negatives": True}, "train split has none"),
        ({"triplets": -2}, "--triplets must be"),
        ({"triplets": 10_000}, "triplets"),
        ({"hard_fraction": 1.5}, "hard_fraction"),
    ],
)
def test_bad_requests_are_user_errors(kwargs, pattern):
    args = {"positives": 1, "negatives": 1, **kwargs}
    with pytest.raises(UserError, match=pattern):
        curate_pairs(make_dataset(), **args)


def test_empty_split_is_user_error():
    ds = make_dataset()
    with pytest.raises(UserError, match="query split has no labelled images"):
        curate_pairs(dataclasses.replace(ds, query=[]), positives=1, negatives=1)
    with pytest.raises(UserError, match="train split has no labelled images"):
        curate_pairs(dataclasses.replace(ds, train=[]), positives=1, negatives=1, split="train")


def test_duplicate_image_is_user_error():
    ds = make_dataset()
    dup = dataclasses.replace(ds, gallery=[*ds.gallery, ds.query[0]])
    with pytest.raises(UserError, match="listed twice"):
        curate_pairs(dup, positives=1, negatives=1)


# ------------------------------------------------------------------ files and hashes


def test_parquet_and_csv_round_trip_with_same_hash(tmp_path):
    ps = curate_pairs(make_dataset(), positives=20, negatives=20, triplets=2)
    h1 = write_pairs(tmp_path / "p.parquet", ps)
    h2 = write_pairs(tmp_path / "p.csv", ps)
    assert h1 == h2 == ps.content_hash
    a, b = read_pairs(tmp_path / "p.parquet"), read_pairs(tmp_path / "p.csv")
    assert a.table.equals(ps.table) and b.table.equals(ps.table)
    assert a.meta == ps.meta == b.meta
    assert a.triplets == ps.meta["triplets"]
    sidecar = json.loads((tmp_path / "p.csv.meta.json").read_text())
    assert sidecar["content_hash"] == h1


def test_edited_csv_is_refused(tmp_path):
    ps = curate_pairs(make_dataset(), positives=5, negatives=5)
    path = tmp_path / "p.csv"
    write_pairs(path, ps)
    table = pacsv.read_csv(path)
    labels = table.column("label").to_pylist()
    labels[0] = 1 - labels[0]
    edited = table.set_column(table.schema.get_field_index("label"), "label", pa.array(labels))
    pacsv.write_csv(edited, path)
    with pytest.raises(UserError, match="content hash mismatch"):
        read_pairs(path)
    (tmp_path / "p.csv.meta.json").unlink()
    with pytest.raises(UserError, match="sidecar is missing"):
        read_pairs(path)


def test_hash_sees_every_column():
    ps = curate_pairs(make_dataset(), positives=5, negatives=5)
    base = pairset_hash(ps.table)
    for name in PAIRS_SCHEMA.names:
        col = ps.table.column(name).to_pylist()
        col[3] = col[3] + "x" if isinstance(col[3], str) else col[3] + 1
        changed = ps.table.set_column(
            PAIRS_SCHEMA.get_field_index(name),
            PAIRS_SCHEMA.field(name),
            pa.array(col, PAIRS_SCHEMA.field(name).type),
        )
        assert pairset_hash(changed) != base, name
    # swapping two rows changes it too: row order is content (pair_id = row index)
    swapped = ps.table.take([1, 0, *range(2, ps.table.num_rows)])
    assert pairset_hash(swapped) != base


def test_write_errors_leave_nothing_behind(tmp_path):
    ps = curate_pairs(make_dataset(), positives=5, negatives=5)
    with pytest.raises(UserError, match=r"end in \.parquet or \.csv"):
        write_pairs(tmp_path / "p.json", ps)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot create the output folder"):
        write_pairs(blocker / "p.parquet", ps)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_unwritable_folder_is_user_error(tmp_path, monkeypatch):
    import reidbench.pairs.curate as pairs_mod

    ps = curate_pairs(make_dataset(), positives=5, negatives=5)
    monkeypatch.setattr(pairs_mod.os, "access", lambda *a, **k: False)  # tests run as root
    with pytest.raises(UserError, match="not writable"):
        write_pairs(tmp_path / "sub" / "p.parquet", ps)
    assert list(tmp_path.iterdir()) == []


def test_read_missing_file_is_user_error(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        read_pairs(tmp_path / "nope.parquet")
