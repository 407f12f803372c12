"""Hard-negative mining: the curator side of `reidbench pairs --hard-negatives`.

A miner turns images into feature vectors (any ReID embedder can); the
curator then fills part of each camera-pair stratum's negative quota with the
most alike different-identity pairs. It goes round the stratum's anchor images
in a seeded order and gives each anchor its nearest unused partner before any
anchor gets a second one, so hard negatives spread over many identities
instead of piling onto the few look-alikes that top a global ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from reidbench.datasets.base import ImageRecord
from reidbench.pairs.pools import Pools
from reidbench.pairs.rng import StableRng


@runtime_checkable
class NegativeMiner(Protocol):
    """Gives a feature vector per image; cosine similarity of features = hardness.

    `name` identifies the miner in the pair set's provenance (e.g. the
    embedder name and weight hash). `features` returns an (N, D) float array
    in the order of `records`; rows need not be normalised.
    """

    name: str

    def features(self, records: Sequence[ImageRecord]) -> np.ndarray: ...


def miner_features(miner: NegativeMiner, records: Sequence[ImageRecord]) -> np.ndarray:
    """Call the miner and return L2-normalised float64 rows (zero rows stay zero)."""
    feats = np.asarray(miner.features(records), dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] != len(records):
        raise ValueError(
            f"negative miner {miner.name!r} returned shape {feats.shape} "
            f"for {len(records)} images; expected ({len(records)}, D)"
        )
    if not np.isfinite(feats).all():
        raise ValueError(f"negative miner {miner.name!r} returned non-finite features")
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    return feats / np.where(norms > 0, norms, 1.0)


class _Candidates:
    """Each anchor's partners, most similar first, computed lazily in batches."""

    def __init__(
        self,
        pools: Pools,
        anchors: np.ndarray,
        partner_cams: np.ndarray,
        feats_a: np.ndarray,
        feats_b: np.ndarray,
        depth: int,
    ) -> None:
        self._pools, self._anchors, self._partner_cams = pools, anchors, partner_cams
        self._fa, self._fb = feats_a, feats_b
        self._depth = depth
        self._lists: dict[int, np.ndarray] = {}
        self._full: set[int] = set()
        self._by_cam = {int(c): pools.b.by_cam(int(c)) for c in np.unique(partner_cams)}

    def get(self, t: int, need: int) -> np.ndarray:
        """Partners of anchor number t, at least `need` long unless fewer exist."""
        have = self._lists.get(t)
        if have is not None and (have.size >= need or t in self._full):
            return have
        if have is None:
            self._compute(range(t, min(t + 256, self._anchors.size)), self._depth)
        if self._lists[t].size < need and t not in self._full:
            self._compute([t], None)
        return self._lists[t]

    def _compute(self, ts: Sequence[int] | range, depth: int | None) -> None:
        ts = [t for t in ts if t not in self._full and (depth is None or t not in self._lists)]
        pools = self._pools
        for cam in sorted({int(self._partner_cams[t]) for t in ts}):
            group = [t for t in ts if int(self._partner_cams[t]) == cam]
            partners = self._by_cam[cam]
            anchors = self._anchors[group]
            sims = self._fa[anchors] @ self._fb[partners].T
            same = pools.a.pid[anchors][:, None] == pools.b.pid[partners][None, :]
            sims[same] = -np.inf
            for row, t in enumerate(group):
                valid = ~same[row]
                cand, s = partners[valid], sims[row, valid]
                order = np.lexsort((cand, -s))  # most similar first, ties by index
                if depth is not None and depth < order.size:
                    order = order[:depth]
                else:
                    self._full.add(t)
                self._lists[t] = cand[order]


def _anchors(pools: Pools, stratum: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = divmod(stratum, pools.num_cams)
    pairs = [(x, y)] if x == y else [(x, y), (y, x)]
    anchors, partner_cams = [], []
    for cam, partner in pairs:
        idx = pools.a.by_cam(cam)
        idx = idx[pools.a.pid[idx] > 0]  # distractors are only ever partners
        anchors.append(idx)
        partner_cams.append(np.full(idx.size, partner, dtype=np.int64))
    return np.concatenate(anchors), np.concatenate(partner_cams)


def mine_stratum(
    pools: Pools,
    stratum: int,
    k: int,
    feats_a: np.ndarray,
    feats_b: np.ndarray,
    rng: StableRng,
) -> np.ndarray:
    """Keys of `k` hard negatives in one stratum (k must not exceed its capacity)."""
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    anchors, partner_cams = _anchors(pools, stratum)
    order = rng.permutation(anchors.size)
    anchors, partner_cams = anchors[order], partner_cams[order]
    rounds = -(-k // max(anchors.size, 1))
    cands = _Candidates(pools, anchors, partner_cams, feats_a, feats_b, depth=2 * rounds + 8)
    pointer = np.zeros(anchors.size, dtype=np.int64)
    chosen: list[int] = []
    taken: set[int] = set()
    active = list(range(anchors.size))
    while len(chosen) < k and active:
        still = []
        for t in active:
            if len(chosen) >= k:
                break
            p = int(pointer[t])
            while True:
                lst = cands.get(t, p + 1)
                if p >= lst.size:
                    break
                i, j = int(anchors[t]), int(lst[p])
                if pools.unordered:
                    i, j = min(i, j), max(i, j)
                key = i * len(pools.b) + j
                p += 1
                if key not in taken:
                    taken.add(key)
                    chosen.append(key)
                    break
            pointer[t] = p
            if p < cands.get(t, p + 1).size:
                still.append(t)
        active = still
    if len(chosen) < k:
        raise RuntimeError(f"stratum {stratum}: only {len(chosen)} hard negatives, {k} needed")
    return np.asarray(chosen, dtype=np.int64)
