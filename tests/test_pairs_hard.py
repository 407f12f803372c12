from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from reidbench.datasets.base import ImageRecord
from reidbench.pairs import NegativeMiner, curate_pairs
from tests.test_pairs_data import brute_force_pairs, make_dataset


def _jitter(path: str) -> float:
    return int(hashlib.sha256(path.encode()).hexdigest()[:8], 16) / 16**8 * 1e-3


@dataclass
class PidMiner:
    """Toy miner: identities on an arc, so pid p looks most like p - 1 and p + 1.

    A tiny per-image jitter breaks ties; distractors sit at `distractor_angle`.
    """

    name: str = "toy-pid-arc"
    distractor_angle: float = 10.0
    calls: list[int] = field(default_factory=list)

    def angle(self, r: ImageRecord) -> float:
        base = self.distractor_angle if r.pid == 0 else 0.1 * r.pid
        return base + _jitter(r.path)

    def features(self, records: Sequence[ImageRecord]) -> np.ndarray:
        self.calls.append(len(records))
        ang = np.array([self.angle(r) for r in records])
        return np.stack([np.cos(ang), np.sin(ang)], axis=1).astype(np.float32) * 3.0


def test_toy_miner_satisfies_protocol():
    assert isinstance(PidMiner(), NegativeMiner)


def test_each_anchor_gets_its_most_similar_partner():
    ds = make_dataset(n_ids=12, query_per_id=2, gallery_per_id=6, cams=4, seed=4)
    miner = PidMiner()
    ps = curate_pairs(ds, positives=4, negatives=30, negative_miner=miner, hard_fraction=1.0)
    rows = ps.table.to_pylist()
    hard_ids = ps.meta["hard_negatives"]["pair_ids"]
    assert len(hard_ids) == 30 == ps.meta["counts"]["hard_negatives"]
    assert all(rows[k]["label"] == 0 for k in hard_ids)
    gallery = [r for r in ds.gallery if r.pid > 0]
    by_path = {r.path: r for r in ds.query + ds.gallery}
    anchors_per_stratum: dict[tuple[int, int], list[str]] = defaultdict(list)
    for k in hard_ids:
        row = rows[k]
        a = by_path[row["path_a"]]
        candidates = [g for g in gallery if g.camid == row["cam_b"] and g.pid != a.pid]
        best = min(candidates, key=lambda g: abs(miner.angle(g) - miner.angle(a)))
        assert row["path_b"] == best.path
        s = (min(row["cam_a"], row["cam_b"]), max(row["cam_a"], row["cam_b"]))
        anchors_per_stratum[s].append(row["path_a"])
    for anchors in anchors_per_stratum.values():
        assert len(anchors) == len(set(anchors))  # one per anchor before any gets two


def test_hard_negatives_are_harder_than_random_ones():
    ds = make_dataset(n_ids=30, query_per_id=2, gallery_per_id=6, cams=3, seed=1)
    ps = curate_pairs(ds, positives=10, negatives=120, negative_miner=PidMiner(), hard_fraction=0.5)
    rows = ps.table.to_pylist()
    hard = set(ps.meta["hard_negatives"]["pair_ids"])
    assert len(hard) == 60
    gap_hard = [abs(r["pid_a"] - r["pid_b"]) for r in rows if r["pair_id"] in hard]
    gap_rand = [
        abs(r["pid_a"] - r["pid_b"]) for r in rows if r["label"] == 0 and r["pair_id"] not in hard
    ]
    assert len(gap_rand) == 60
    assert np.mean(gap_hard) < 2 < 5 < np.mean(gap_rand)
    # hard negatives are spread over camera pairs like the rest
    per = defaultdict(int)
    for k in hard:
        per[(min(rows[k]["cam_a"], rows[k]["cam_b"]), max(rows[k]["cam_a"], rows[k]["cam_b"]))] += 1
    assert max(per.values()) - min(per.values()) <= 1


def test_fraction_zero_is_plain_random_and_never_calls_the_miner():
    ds = make_dataset()
    miner = PidMiner()
    plain = curate_pairs(ds, positives=10, negatives=40, seed=3)
    mined = curate_pairs(
        ds, positives=10, negatives=40, seed=3, negative_miner=miner, hard_fraction=0
    )
    assert plain.table.equals(mined.table)
    assert miner.calls == []
    assert mined.meta["hard_negatives"]["pair_ids"] == []


def test_miner_is_called_once_with_all_candidates():
    ds = make_dataset(distractors=5)
    miner = PidMiner()
    curate_pairs(ds, positives=2, negatives=20, negative_miner=miner, distractor_negatives=True)
    assert miner.calls == [len(ds.query) + len(ds.gallery)]


@pytest.mark.parametrize("split", ["test", "train"])
def test_all_negatives_hard_exhausts_the_supply_exactly(split):
    ds = make_dataset(n_ids=4, query_per_id=1, gallery_per_id=3, cams=3, train_ids=4)
    valid = brute_force_pairs(ds, split, False, False)
    neg = {k for k, v in valid.items() if v == 0}
    ps = curate_pairs(
        ds, positives=0, negatives=len(neg), split=split, negative_miner=PidMiner(), hard_fraction=1
    )
    got = {(r["path_a"], r["path_b"]) for r in ps.table.to_pylist()}
    assert got == neg
    assert len(ps.meta["hard_negatives"]["pair_ids"]) == len(neg)


def test_distractors_can_be_hard_negatives():
    ds = make_dataset(n_ids=6, distractors=10, cams=3)
    miner = PidMiner(distractor_angle=0.1 * 3.5)  # distractors look like pids 3 and 4
    ps = curate_pairs(
        ds,
        positives=2,
        negatives=20,
        negative_miner=miner,
        hard_fraction=1.0,
        distractor_negatives=True,
    )
    rows = ps.table.to_pylist()
    assert any(rows[k]["pid_b"] == 0 for k in ps.meta["hard_negatives"]["pair_ids"])
    assert all(r["pid_a"] != 0 for r in rows)


def test_hard_mining_is_deterministic():
    ds = make_dataset()
    kw = dict(positives=5, negatives=30, negative_miner=PidMiner(), seed=9)
    assert curate_pairs(ds, **kw).table.equals(curate_pairs(ds, **kw).table)


def test_bad_miner_output_is_rejected():
    @dataclass
    class Broken:
        name: str = "broken"

        def features(self, records):
            return np.zeros((len(records) - 1, 4))

    with pytest.raises(ValueError, match="returned shape"):
        curate_pairs(make_dataset(), positives=1, negatives=5, negative_miner=Broken())

    @dataclass
    class NaNs:
        name: str = "nans"

        def features(self, records):
            return np.full((len(records), 4), np.nan)

    with pytest.raises(ValueError, match="non-finite"):
        curate_pairs(make_dataset(), positives=1, negatives=5, negative_miner=NaNs())
