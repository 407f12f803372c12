"""Where pairs may come from: candidate images per split, camera-pair strata, sampling.

A pair is an index pair (i, j): i into side A, j into side B. For the
query-gallery split A is the query and B the gallery; for the test and train
splits both sides are one pool and a pair is stored once with i < j. Records
are sorted before anything is drawn, so the result does not depend on the
order a loader listed files in.

Strata are unordered camera pairs {x, y}, numbered `min * C + max`. Positives
are few per identity and are enumerated; negatives are counted exactly (by
camera and identity histograms) and drawn by rejection, so the 3,368 x 15,913
query x gallery combinations of Market-1501 are never materialised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reidbench.datasets.base import Dataset, ImageRecord
from reidbench.errors import UserError
from reidbench.pairs.rng import StableRng

SPLIT_CHOICES = ("query-gallery", "test", "train")

# Below this many raw (i, j) combinations a stratum is enumerated instead of
# sampled by rejection: cheap, and exact even when nearly every pair is wanted.
ENUMERATE_LIMIT = 1 << 18


@dataclass(frozen=True)
class Side:
    """Sorted candidate images of one side, as parallel arrays."""

    records: tuple[ImageRecord, ...]
    pid: np.ndarray  # int64
    cam: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.records)

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.records]

    def by_cam(self, cam: int) -> np.ndarray:
        return np.flatnonzero(self.cam == cam)


@dataclass(frozen=True)
class Pools:
    """Candidate images of one split and the camera rule pairs obey."""

    split: str
    a: Side
    b: Side  # the same object as `a` when `unordered`
    unordered: bool
    same_camera: bool
    num_cams: int
    distractors: int  # distractor images on side B that may be used as negatives
    distractors_left_out: int  # distractor images in the split left out (flag off)

    def strata(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        ca, cb = self.a.cam[i], self.b.cam[j]
        return np.minimum(ca, cb) * self.num_cams + np.maximum(ca, cb)

    def stratum_name(self, s: int) -> str:
        return f"{s // self.num_cams}-{s % self.num_cams}"

    def key(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """One int64 per pair, unique within the split (canonical i < j when unordered)."""
        return np.asarray(i, dtype=np.int64) * len(self.b) + np.asarray(j, dtype=np.int64)

    def unkey(self, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return key // len(self.b), key % len(self.b)


def _side(records: list[ImageRecord]) -> Side:
    # Distractors sort last, so in the unordered splits the canonical a (lower
    # index) of a distractor pair is always the real identity.
    ordered = tuple(sorted(records, key=lambda r: (r.pid == 0, r.path)))
    return Side(
        records=ordered,
        pid=np.fromiter((r.pid for r in ordered), dtype=np.int64, count=len(ordered)),
        cam=np.fromiter((r.camid for r in ordered), dtype=np.int64, count=len(ordered)),
    )


def _check_unique(records: list[ImageRecord], where: str) -> None:
    seen: set[str] = set()
    for r in records:
        if r.path in seen:
            raise UserError(
                f"{where}: image {r.path} is listed twice in the split; "
                "fix the dataset so every image appears once"
            )
        seen.add(r.path)


def build_pools(dataset: Dataset, split: str, *, same_camera: bool, distractors: bool) -> Pools:
    """Candidate images per split. Distractors (pid 0) come from the gallery only."""
    root = dataset.root
    if split not in SPLIT_CHOICES:
        raise UserError(f"unknown split {split!r}; use one of {', '.join(SPLIT_CHOICES)} (--split)")
    gallery_d = [r for r in dataset.gallery if r.pid == 0]
    if split == "query-gallery":
        a_recs = [r for r in dataset.query if r.pid > 0]
        b_recs = [r for r in dataset.gallery if r.pid > 0]
        for name, recs in (("query", a_recs), ("gallery", b_recs)):
            if not recs:
                raise UserError(
                    f"{root}: the {name} split has no labelled images; "
                    "check the dataset root (reidbench dataset info ROOT)"
                )
        extra = gallery_d if distractors else []
        _check_unique(a_recs + b_recs + extra, str(root))
        a, b = _side(a_recs), _side(b_recs + extra)
        unordered = False
        left_out = 0 if distractors else len(gallery_d)
        used = len(extra)
    else:
        if split == "train":
            if distractors:
                raise UserError(
                    f"{root}: distractors live in the gallery; the train split has none. "
                    "Drop --distractors (distractor_negatives) or use --split test"
                )
            pool = [r for r in dataset.train if r.pid > 0]
            extra = []
        else:
            pool = [r for r in dataset.query + dataset.gallery if r.pid > 0]
            extra = gallery_d if distractors else []
        if not pool:
            raise UserError(
                f"{root}: the {split} split has no labelled images; "
                "check the dataset root (reidbench dataset info ROOT)"
            )
        _check_unique(pool + extra, str(root))
        a = b = _side(pool + extra)
        unordered = True
        left_out = 0 if (distractors or split == "train") else len(gallery_d)
        used = len(extra)
    num_cams = int(max(dataset.num_cameras, int(a.cam.max()) + 1, int(b.cam.max()) + 1))
    if min(int(a.cam.min()), int(b.cam.min())) < 0:
        raise UserError(f"{root}: negative camera ids in the dataset; camids must be 0-based")
    return Pools(split, a, b, unordered, same_camera, num_cams, used, left_out)


def _groups(pid: np.ndarray) -> dict[int, np.ndarray]:
    """Indices per pid, each ascending."""
    order = np.argsort(pid, kind="stable")
    uniq, starts, counts = np.unique(pid[order], return_index=True, return_counts=True)
    return {int(p): order[s : s + c] for p, s, c in zip(uniq, starts, counts, strict=True)}


def enumerate_positives(pools: Pools, same_camera: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every valid positive (i, j), grouped by pid in ascending pid order."""
    ii: list[np.ndarray] = []
    jj: list[np.ndarray] = []
    ga = _groups(pools.a.pid)
    gb = ga if pools.unordered else _groups(pools.b.pid)
    for p in sorted(ga.keys() & gb.keys()):
        if p <= 0:
            continue
        if pools.unordered:
            idx = ga[p]
            upper = np.triu_indices(idx.size, 1)
            i, j = idx[upper[0]], idx[upper[1]]
        else:
            i = np.repeat(ga[p], gb[p].size)
            j = np.tile(gb[p], ga[p].size)
        if not same_camera:
            keep = pools.a.cam[i] != pools.b.cam[j]
            i, j = i[keep], j[keep]
        ii.append(i)
        jj.append(j)
    if not ii:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    return np.concatenate(ii).astype(np.int64), np.concatenate(jj).astype(np.int64)


def _pid_cam_counts(side: Side, pid_index: dict[int, int], num_cams: int) -> np.ndarray:
    m = np.zeros((len(pid_index), num_cams), dtype=np.int64)
    rows = np.fromiter((pid_index[int(p)] for p in side.pid), dtype=np.int64, count=len(side))
    np.add.at(m, (rows, side.cam), 1)
    return m


def negative_capacity(pools: Pools) -> np.ndarray:
    """Exact number of valid negative pairs per stratum (length C*C, zeros off the strata).

    Counts come from camera histograms minus same-identity combinations, so
    nothing is enumerated. Distractors share pid 0, which makes two
    distractors count as "same" and so never pair with each other.
    """
    c = pools.num_cams
    pids = sorted(set(pools.a.pid.tolist()) | set(pools.b.pid.tolist()))
    index = {p: k for k, p in enumerate(pids)}
    ma = _pid_cam_counts(pools.a, index, c)
    mb = ma if pools.unordered else _pid_cam_counts(pools.b, index, c)
    na, nb = ma.sum(axis=0), mb.sum(axis=0)
    ordered = np.outer(na, nb) - ma.T @ mb  # [x, y]: a in cam x, b in cam y, pids differ
    cap = np.zeros(c * c, dtype=np.int64)
    for x in range(c):
        for y in range(x, c):
            if x == y:
                if not pools.same_camera:
                    continue
                v = ordered[x, x] // 2 if pools.unordered else ordered[x, x]
            else:
                v = ordered[x, y] if pools.unordered else ordered[x, y] + ordered[y, x]
            cap[x * c + y] = v
    return cap


def waterfill(capacity: np.ndarray, total: int, rng: StableRng) -> np.ndarray:
    """Spread `total` over strata as evenly as capacities allow.

    Every stratum gets min(capacity, level) for the largest level that fits;
    the remainder goes one each to strata that can take more, chosen at
    random so no camera pair is favoured by its number. Result: two strata
    differ by more than one only when the smaller one is exhausted.
    """
    cap = np.asarray(capacity, dtype=np.int64)
    if total > int(cap.sum()):
        raise ValueError(f"cannot place {total} in capacity {int(cap.sum())}")
    lo, hi = 0, int(cap.max(initial=0))
    while lo < hi:  # largest level with sum(min(cap, level)) <= total
        mid = (lo + hi + 1) // 2
        if int(np.minimum(cap, mid).sum()) <= total:
            lo = mid
        else:
            hi = mid - 1
    alloc = np.minimum(cap, lo)
    rest = total - int(alloc.sum())
    open_strata = np.flatnonzero(cap > lo)
    alloc[open_strata[rng.permutation(open_strata.size)[:rest]]] += 1
    return alloc


def pick_by_strata(strata: np.ndarray, alloc: np.ndarray, rng: StableRng) -> np.ndarray:
    """Indices of a random alloc[s] members of each stratum s (all members enumerated)."""
    if strata.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((rng.raw(strata.size), strata))
    sorted_strata = strata[order]
    starts = np.searchsorted(sorted_strata, sorted_strata, side="left")
    rank = np.arange(strata.size) - starts
    return np.sort(order[rank < alloc[sorted_strata]])


@dataclass(frozen=True)
class _Block:
    """One rectangle of raw combinations: a in `ai` x b in `bj`."""

    ai: np.ndarray
    bj: np.ndarray

    @property
    def size(self) -> int:
        return int(self.ai.size) * int(self.bj.size)


def _blocks(pools: Pools, stratum: int) -> list[_Block]:
    x, y = divmod(stratum, pools.num_cams)
    if pools.unordered:
        return [_Block(pools.a.by_cam(x), pools.b.by_cam(y))]
    blocks = [_Block(pools.a.by_cam(x), pools.b.by_cam(y))]
    if x != y:
        blocks.append(_Block(pools.a.by_cam(y), pools.b.by_cam(x)))
    return blocks


def _decode(pools: Pools, blocks: list[_Block], u: np.ndarray) -> np.ndarray:
    """Raw combination numbers -> keys of valid negatives (-1 where invalid)."""
    i = np.empty(u.size, dtype=np.int64)
    j = np.empty(u.size, dtype=np.int64)
    offset = 0
    for block in blocks:
        inside = (u >= offset) & (u < offset + block.size)
        local = u[inside] - offset
        i[inside] = block.ai[local // block.bj.size]
        j[inside] = block.bj[local % block.bj.size]
        offset += block.size
    valid = pools.a.pid[i] != pools.b.pid[j]  # also rejects i == j and distractor pairs
    if pools.unordered:
        i, j = np.minimum(i, j), np.maximum(i, j)
    return np.where(valid, pools.key(i, j), -1)


def sample_negatives(
    pools: Pools, stratum: int, k: int, capacity: int, taken: np.ndarray, rng: StableRng
) -> np.ndarray:
    """Keys of `k` distinct random negatives of one stratum, none of them in `taken`.

    `capacity` is the stratum's number of valid negatives (from
    `negative_capacity`) and `taken` holds keys of this stratum only.
    """
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    blocks = _blocks(pools, stratum)
    raw = sum(b.size for b in blocks)
    if raw <= ENUMERATE_LIMIT or 2 * (k + taken.size) > capacity:
        keys = _decode(pools, blocks, np.arange(raw, dtype=np.int64))
        keys = np.unique(keys[keys >= 0])  # sorted: the order no longer depends on blocks
        keys = keys[~np.isin(keys, taken)]
        if keys.size < k:
            raise RuntimeError(f"stratum {stratum}: {keys.size} negatives left, {k} needed")
        return keys[rng.permutation(keys.size)[:k]]
    # Rejection: at least half the valid pairs are still free here, so a batch
    # sized by the valid fraction finishes in a few rounds.
    per_valid = raw / capacity
    chosen = np.zeros(0, dtype=np.int64)
    while chosen.size < k:
        batch = min(int(2 * (k - chosen.size) * per_valid) + 16, 1 << 22)
        keys = _decode(pools, blocks, rng.below(raw, batch))
        keys = keys[keys >= 0]
        _, first = np.unique(keys, return_index=True)
        keys = keys[np.sort(first)]
        keys = keys[~np.isin(keys, taken) & ~np.isin(keys, chosen)]
        chosen = np.concatenate([chosen, keys[: k - chosen.size]])
    return chosen
