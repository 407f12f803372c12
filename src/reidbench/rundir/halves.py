"""The one calibration / held-out split of a pair set, shared by metrics and fusion.

Every stage that tunes something on pairs (the embedder threshold, the
tuned-on-one-half block, fusion weights) must agree on which pairs are
"calibration" and which are "held out", or a tuned number silently leaks into
its own test. The split depends only on each pair's id, its label and a seed:
not on row order, not on which system answered what. Each pair gets a keyed
64-bit hash; within each label, pairs sorted by that hash alternate between
half A (calibration) and half B (held out), so both halves keep the label
balance and half A gets the odd one out.
"""

from __future__ import annotations

import numpy as np

__all__ = ["calibration_mask", "split_halves"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    # Hand-written: numpy's Generator has no keyed per-item hash, and hashlib per
    # pair is 100x slower. This is the standard splitmix64 finaliser (wrapping uint64).
    x = x.astype(np.uint64, copy=True)
    x += _GOLDEN
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def _pair_keys(pair_ids: np.ndarray, seed: int) -> np.ndarray:
    ids = np.asarray(pair_ids, dtype=np.int64).view(np.uint64)
    seed_key = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    return _splitmix64(ids ^ seed_key)


def calibration_mask(pair_ids: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Boolean mask, True for half A (calibration), False for half B (held out).

    Stratified by label: each label's pairs are ordered by a keyed hash of
    (pair_id, seed) and alternate A, B, A, B, ... Deterministic and independent
    of row order. Pair ids must be unique.
    """
    ids = np.asarray(pair_ids, dtype=np.int64)
    y = np.asarray(labels)
    if ids.shape != y.shape or ids.ndim != 1:
        raise ValueError("pair_ids and labels must be 1-D arrays of the same length")
    if np.unique(ids).size != ids.size:
        raise ValueError("pair_ids must be unique")
    keys = _pair_keys(ids, seed)
    mask = np.zeros(ids.size, dtype=bool)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        # lexsort: last key is primary; ties in the hash (never seen in practice) fall back to id.
        order = members[np.lexsort((ids[members], keys[members]))]
        mask[order[0::2]] = True
    return mask


def split_halves(
    pair_ids: np.ndarray, labels: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of half A (calibration) and half B (held out), each sorted ascending."""
    mask = calibration_mask(pair_ids, labels, seed)
    return np.flatnonzero(mask), np.flatnonzero(~mask)
