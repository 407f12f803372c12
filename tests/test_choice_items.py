"""Multiple-choice items: rules checked row by row, balance, seeding, hashing, hard negatives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reidbench.errors import UserError
from reidbench.tasks.choice_items import curate_choice_items, items_hash, read_items, write_items
from tests.test_pairs_data import make_dataset
from tests.test_pairs_hard import PidMiner


def _check_rules(ds, items, split: str = "query-gallery") -> None:
    """Every item obeys the documented rules, checked against the dataset directly."""
    pooled = {r.path: r for r in [*ds.query, *ds.gallery]}  # the test split: one pool
    side_a = {r.path: r for r in ds.query} if split == "query-gallery" else pooled
    side_b = {r.path: r for r in ds.gallery} if split == "query-gallery" else pooled
    for row in items.table.to_pylist():
        q = side_a[row["query_path"]]
        assert (q.pid, q.camid) == (row["query_pid"], row["query_cam"])
        cands = [side_b[p] for p in row["cand_paths"]]
        assert [c.pid for c in cands] == row["cand_pids"]
        assert [c.camid for c in cands] == row["cand_cams"]
        true = cands[row["true_slot"]]
        assert true.pid == q.pid and true.camid != q.camid and true.path != q.path
        negs = [c for k, c in enumerate(cands) if k != row["true_slot"]]
        assert all(c.pid not in (q.pid, 0) and c.camid != q.camid for c in negs)
        assert len({c.pid for c in negs}) == len(negs)  # N-1 different other people


def test_items_follow_the_rules_and_true_slots_are_balanced() -> None:
    ds = make_dataset(n_ids=12, cams=4)
    items = curate_choice_items(ds, items=22, candidates=4, seed=3)
    assert len(items) == 22 and items.n_candidates == 4
    _check_rules(ds, items)
    counts = np.bincount(items.true_slot, minlength=4)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 22  # exact up to rounding
    # Queries spread over identities: no identity is used twice before every one is used once.
    pids = items.query_pid.tolist()
    eligible = {r["query_pid"] for r in items.table.to_pylist()}
    assert len(set(pids[: len(eligible)])) == len(eligible)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(2, 5), k=st.integers(1, 15))
def test_rules_hold_for_any_seed_and_size(seed: int, n: int, k: int) -> None:
    ds = make_dataset(n_ids=10, cams=4, seed=seed % 7)
    try:
        items = curate_choice_items(ds, items=k, candidates=n, seed=seed)
    except UserError:
        return  # too few eligible queries or negatives: said, never silently fewer
    _check_rules(ds, items)
    counts = np.bincount(items.true_slot, minlength=n)
    assert counts.max() - counts.min() <= 1


def test_seeded_and_hashed(tmp_path: Path) -> None:
    ds = make_dataset()
    a = curate_choice_items(ds, items=10, candidates=3, seed=1)
    b = curate_choice_items(ds, items=10, candidates=3, seed=1)
    c = curate_choice_items(ds, items=10, candidates=3, seed=2)
    assert items_hash(a.table) == items_hash(b.table) != items_hash(c.table)
    path = tmp_path / "items.parquet"
    digest = write_items(path, a)
    back = read_items(path)
    assert back.meta["content_hash"] == digest and back.table.equals(a.table)
    # A tampered file is refused, not used.
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    slots = t.column("true_slot").to_pylist()
    slots[0] = (slots[0] + 1) % 3
    pq.write_table(t.set_column(t.column_names.index("true_slot"), "true_slot", [slots]), path)
    with pytest.raises(UserError, match="content hash mismatch"):
        read_items(path)


def test_test_split_and_too_many_items() -> None:
    ds = make_dataset()
    items = curate_choice_items(ds, items=8, candidates=3, split="test")
    _check_rules(ds, items, split="test")
    with pytest.raises(UserError, match="fewer than items = 500"):
        curate_choice_items(ds, items=500, candidates=3)
    with pytest.raises(UserError, match="fewer than candidates - 1"):
        curate_choice_items(make_dataset(n_ids=3, cams=2), items=1, candidates=6)


def test_hard_negatives_are_the_most_alike_other_identities() -> None:
    ds = make_dataset(n_ids=12, cams=4)
    miner = PidMiner()
    hard = curate_choice_items(ds, items=12, candidates=3, seed=0, negative_miner=miner)
    _check_rules(ds, hard)
    assert hard.meta["negatives"] == "hard" and hard.meta["miner"] == miner.name
    # Brute force: for each item the negatives are the two nearest other identities on the arc
    # (among images off the query's camera), nearer than random ones on average.
    rand = curate_choice_items(ds, items=12, candidates=3, seed=0)

    def gap(items) -> float:
        d = []
        for row in items.table.to_pylist():
            negs = [p for k, p in enumerate(row["cand_pids"]) if k != row["true_slot"]]
            d += [abs(p - row["query_pid"]) for p in negs]
        return float(np.mean(d))

    assert gap(hard) < gap(rand)
    by_path = {r.path: r for r in ds.gallery}
    for row in hard.table.to_pylist():
        q = row["query_pid"]
        pool = [r for r in ds.gallery if r.pid not in (0, q) and r.camid != row["query_cam"]]
        qrec = next(r for r in ds.query if r.path == row["query_path"])
        qa = miner.angle(qrec)
        best: dict[int, float] = {}
        for r in pool:
            sim = np.cos(miner.angle(r) - qa)
            best[r.pid] = max(best.get(r.pid, -2.0), sim)
        want = sorted(best.values(), reverse=True)[:2]
        got = [
            np.cos(miner.angle(by_path[p]) - qa)
            for k, p in enumerate(row["cand_paths"])
            if k != row["true_slot"]
        ]
        assert sorted(got, reverse=True) == pytest.approx(want)
