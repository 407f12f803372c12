"""Image triplets for the transitivity check (a = b and b = c should give a = c).

Two kinds, alternating (the first, third, ... triplet is all-same):
- all-same: a, b, c show one person, so all three pairs are positives; a
  judge that says "same" twice and "different" once has contradicted itself.
- two-same: a and b show one person and c another, so (a, b) is positive and
  (b, c), (a, c) are negatives; "same" for (a, b) and (b, c) forces "same"
  for (a, c), which would be wrong, so this kind catches a judge whose "same"
  does not compose.
All three pairs of a triplet obey the split's camera rule (cross-camera
unless same-camera pairs are allowed); distractors are never used. For the
query-gallery split a is a query image and b, c are gallery images, so the
(b, c) pair is the one gallery-gallery pair a triplet needs (a triangle
cannot be drawn inside query x gallery alone).

Sampling is exact and uniform over all valid triplets of a kind: a positive
pair (a, b) is drawn with weight equal to its number of valid third images,
then c uniformly among those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reidbench.errors import UserError
from reidbench.pairs.pools import Pools
from reidbench.pairs.rng import StableRng

ALL_SAME = "all-same"
TWO_SAME = "two-same"

# Pair spaces: AB pairs (a from side A, b from side B) and, for query-gallery
# only, BB pairs (two gallery images, stored with the lower index as a).
SPACE_AB = 0
SPACE_BB = 1


@dataclass(frozen=True)
class Triplet:
    kind: str
    images: tuple[int, int, int]  # a (side A), b, c (side B)
    pairs: tuple[tuple[int, int, int], ...]  # (space, i, j) for ab, bc, ac


def _third_counts(pools: Pools, pos_i: np.ndarray, pos_j: np.ndarray) -> tuple[np.ndarray, ...]:
    """For each positive (a, b): how many valid c exist, per kind (all-same, two-same)."""
    b = pools.b
    real = b.pid > 0
    pids = np.unique(b.pid[real])
    if pos_i.size == 0 or pids.size == 0:
        zero = np.zeros(pos_i.size, dtype=np.int64)
        return zero, zero.copy()
    m = np.zeros((pids.size, pools.num_cams), dtype=np.int64)  # side-B images per (pid, cam)
    np.add.at(m, (np.searchsorted(pids, b.pid[real]), b.cam[real]), 1)
    row = np.searchsorted(pids, pools.a.pid[pos_i])  # every positive's pid is on side B
    per_pid = m.sum(axis=1)[row]
    per_cam = m.sum(axis=0)
    total = int(per_cam.sum())
    if pools.same_camera:
        same = per_pid - (2 if pools.unordered else 1)  # minus b (and a, when on side B)
        other = total - per_pid
    else:
        ca, cb = pools.a.cam[pos_i], pools.b.cam[pos_j]  # distinct: positives are cross-camera
        same = per_pid - m[row, ca] - m[row, cb]
        other = (total - per_cam[ca] - per_cam[cb]) - same
    return np.maximum(same, 0), np.maximum(other, 0)


def triplet_capacity(pools: Pools, pos_i: np.ndarray, pos_j: np.ndarray) -> dict[str, int]:
    """Exact number of distinct valid triplets per kind."""
    same, other = _third_counts(pools, pos_i, pos_j)
    # An all-same triplet is reached from each of its positive pairs that
    # starts on side A: two in query-gallery ((a,b), (a,c)), three otherwise.
    per = 3 if pools.unordered else 2
    return {ALL_SAME: int(same.sum()) // per, TWO_SAME: int(other.sum())}


def _pair(pools: Pools, x: int, y: int, space: int) -> tuple[int, int, int]:
    if pools.unordered or space == SPACE_BB:
        return (space, min(x, y), max(x, y))
    return (space, x, y)


def sample_triplets(
    pools: Pools, pos_i: np.ndarray, pos_j: np.ndarray, n: int, rng: StableRng
) -> list[Triplet]:
    """`n` distinct triplets, kinds alternating (all-same first)."""
    if n == 0:
        return []
    wanted = {ALL_SAME: (n + 1) // 2, TWO_SAME: n // 2}
    cap = triplet_capacity(pools, pos_i, pos_j)
    short = [k for k in wanted if wanted[k] > cap[k]]
    if short:
        rule = "same-camera allowed" if pools.same_camera else "cross-camera"
        kind = short[0]
        hint = "" if pools.same_camera else "; --same-camera allows more"
        raise UserError(
            f"asked for {n} triplets ({wanted[kind]} {kind}), but the {pools.split} split has "
            f"only {cap[kind]} distinct {rule} {kind} triplets{hint}; ask for fewer --triplets"
        )
    same_w, other_w = _third_counts(pools, pos_i, pos_j)
    out: dict[str, list[Triplet]] = {ALL_SAME: [], TWO_SAME: []}
    for kind, weights in ((ALL_SAME, same_w), (TWO_SAME, other_w)):
        cum = np.cumsum(weights)
        seen: set[tuple[int, ...]] = set()
        budget = 200 * wanted[kind] + 10_000  # exact capacity is known; this never binds
        while len(out[kind]) < wanted[kind] and budget > 0:
            budget -= 1
            r = int(np.searchsorted(cum, rng.uniform(1)[0] * cum[-1], side="right"))
            a, b = int(pos_i[r]), int(pos_j[r])
            c = _third(pools, a, b, kind, rng)
            ident = (a, *sorted((b, c))) if not pools.unordered else tuple(sorted((a, b, c)))
            if ident in seen:
                continue
            seen.add(ident)
            if kind == ALL_SAME:
                a, b, c = ident  # canonical order: query first, then gallery by index
            space_bc = SPACE_AB if pools.unordered else SPACE_BB
            pairs = (
                _pair(pools, a, b, SPACE_AB),
                _pair(pools, b, c, space_bc),
                _pair(pools, a, c, SPACE_AB),
            )
            out[kind].append(Triplet(kind, (a, b, c), pairs))
        if len(out[kind]) < wanted[kind]:
            raise RuntimeError(f"could not draw {wanted[kind]} {kind} triplets")
    mixed: list[Triplet] = []
    for t in range(n):
        mixed.append(out[ALL_SAME if t % 2 == 0 else TWO_SAME][t // 2])
    return mixed


def _third(pools: Pools, a: int, b: int, kind: str, rng: StableRng) -> int:
    side = pools.b
    pid = int(pools.a.pid[a])
    ok = (side.pid == pid) if kind == ALL_SAME else (side.pid != pid) & (side.pid > 0)
    if pools.same_camera:
        ok[b] = False
        if pools.unordered:
            ok[a] = False
    else:
        ok &= (side.cam != pools.a.cam[a]) & (side.cam != side.cam[b])
    cand = np.flatnonzero(ok)
    return int(cand[rng.below(cand.size, 1)[0]])
