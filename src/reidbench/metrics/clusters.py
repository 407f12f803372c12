"""Which pairs depend on each other: identity clusters for dependence-aware intervals and tests.

Two pairs are dependent when they share a person (an identity effect: some
people are easy, some look like many others). A same-person pair belongs to
one cluster (its identity); a different-person pair belongs to two (both
identities): impostor pairs are a two-way crossed design (Owen 2007), with the
twist that both "ways" are drawn from the same population of people, so one
cluster index serves both sides. Images are nested in identities, so pairs
that share an image are already in a shared cluster. Distractors and junk
(pid 0 or negative) have no identity: each of their images is its own cluster
(one identity per image), or each pair end when image ids are not given.

The unordered pair of clusters of a different-person pair is its *dyad*; the
two-way variance needs it for the inclusion-exclusion term of Cameron,
Gelbach & Miller (2011). See docs/metrics.md, "Statistics".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PairClusters", "as_pair_clusters", "pair_clusters"]


@dataclass(frozen=True)
class PairClusters:
    """Cluster codes per pair. ``a`` and ``b``: (n,) ints in [0, n_clusters), ``b == a`` for a
    pair of one cluster; ``dyad``: (n,) ints in [0, n_dyads) for two-cluster pairs, -1 else."""

    a: np.ndarray
    b: np.ndarray
    n_clusters: int
    dyad: np.ndarray
    n_dyads: int

    @property
    def n(self) -> int:
        return int(self.a.size)

    @property
    def two(self) -> np.ndarray:
        """Mask of pairs that belong to two clusters."""
        return self.a != self.b


def _codes(a: np.ndarray, b: np.ndarray) -> PairClusters:
    """Dense codes from two (n,) arrays of labels (ints or strings)."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("cluster labels must be two 1-D arrays of equal length")
    uniq, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    ca, cb = inv[: a.size].astype(np.int64), inv[a.size :].astype(np.int64)
    two = ca != cb
    dyad = np.full(a.size, -1, dtype=np.int64)
    n_dyads = 0
    if two.any():
        lo, hi = np.minimum(ca[two], cb[two]), np.maximum(ca[two], cb[two])
        du, dinv = np.unique(lo * uniq.size + hi, return_inverse=True)
        dyad[two] = dinv
        n_dyads = int(du.size)
    return PairClusters(ca, cb, int(uniq.size), dyad, n_dyads)


def pair_clusters(
    pid_a: np.ndarray,
    pid_b: np.ndarray,
    img_a: np.ndarray | None = None,
    img_b: np.ndarray | None = None,
) -> PairClusters:
    """Identity clusters of each pair (see the module docstring for the rules).

    ``img_a``/``img_b`` are image ids (any ints or strings, e.g. paths) used only
    for distractor/junk ends (pid <= 0); without them each such end is its own
    cluster.
    """
    pa = np.asarray(pid_a).astype(np.int64)
    pb = np.asarray(pid_b).astype(np.int64)
    n = pa.size
    if pb.size != n:
        raise ValueError("pid_a and pid_b must have the same length")
    keys: list[str] = []
    for side, pids, imgs in (("a", pa, img_a), ("b", pb, img_b)):
        im = None if imgs is None else np.asarray(imgs)
        for k in range(n):
            p = int(pids[k])
            if p > 0:
                keys.append(f"p{p}")
            elif im is not None:
                keys.append(f"i{im[k]}")
            else:
                keys.append(f"x{side}{k}")
    _, inv = np.unique(np.array(keys, dtype=object).astype(str), return_inverse=True)
    return _codes(inv[:n], inv[n:])


def as_pair_clusters(clusters: object, n: int) -> PairClusters:
    """Accept a PairClusters, a (n,) array (one cluster per pair: one-way clustering) or a
    (n, 2) array (the two clusters of each pair, equal for one-cluster pairs)."""
    if isinstance(clusters, PairClusters):
        pc = clusters
    else:
        arr = np.asarray(clusters)
        if arr.ndim == 1:
            pc = _codes(arr, arr)
        elif arr.ndim == 2 and arr.shape[1] == 2:
            pc = _codes(arr[:, 0], arr[:, 1])
        else:
            raise ValueError("clusters must be PairClusters, an (n,) or an (n, 2) integer array")
    if pc.n != n:
        raise ValueError(f"clusters describe {pc.n} pairs, the data has {n}")
    return pc
