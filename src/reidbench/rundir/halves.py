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

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ACROSS",
    "HALF_A",
    "HALF_B",
    "Halves",
    "calibration_mask",
    "identity_codes",
    "identity_halves",
    "image_codes",
    "pair_halves",
    "split_halves",
]

HALF_A, HALF_B, ACROSS = 0, 1, -1

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


# --- identity-disjoint halves (issue #9 item 5) -------------------------------------------


IDENTITY_RULE = (
    "identities (distractors and junk: one identity per image) ordered by a keyed hash of "
    "(identity, seed) alternate between half A (calibration) and half B (held out); a pair "
    "belongs to the half that holds both its identities; a different-person pair whose two "
    "identities fall in different halves is 'across' and is used neither for fitting nor for "
    "the held-out comparison of fitted systems"
)
PAIR_RULE = (
    "per label, pairs ordered by a keyed hash of (pair_id, seed) alternate between half A "
    "(calibration) and half B (held out); halves share identities and images"
)


def identity_codes(
    pid_a: np.ndarray, pid_b: np.ndarray, image_a: np.ndarray, image_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Identity per side: the pid, or a unique negative code per image for pid <= 0
    (distractors, junk), so that distractor images never tie two pairs together."""
    ia = np.where(np.asarray(pid_a) > 0, pid_a, -1 - np.asarray(image_a, dtype=np.int64))
    ib = np.where(np.asarray(pid_b) > 0, pid_b, -1 - np.asarray(image_b, dtype=np.int64))
    return ia.astype(np.int64), ib.astype(np.int64)


def image_codes(path_a: np.ndarray, path_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One integer per distinct image path, shared by both sides."""
    n = len(path_a)
    paths = np.concatenate([np.asarray(path_a), np.asarray(path_b)]).astype(str)
    _, codes = np.unique(paths, return_inverse=True)
    codes = codes.astype(np.int64)
    return codes[:n], codes[n:]


@dataclass(frozen=True)
class Halves:
    """Per pair: HALF_A (0, calibration), HALF_B (1, held out) or ACROSS (-1)."""

    half: np.ndarray
    kind: str  # "identity" | "pair"
    seed: int

    @property
    def a(self) -> np.ndarray:
        return self.half == HALF_A

    @property
    def b(self) -> np.ndarray:
        return self.half == HALF_B

    @property
    def across(self) -> np.ndarray:
        return self.half == ACROSS

    def take(self, keep: np.ndarray) -> Halves:
        return Halves(self.half[keep], self.kind, self.seed)

    def leakage(
        self, id_a: np.ndarray, id_b: np.ndarray, img_a: np.ndarray, img_b: np.ndarray
    ) -> dict[str, int]:
        """Identities and images that occur in pairs of both halves (0 for identity halves)."""

        def shared(xa: np.ndarray, xb: np.ndarray) -> int:
            in_a = np.union1d(xa[self.a], xb[self.a])
            in_b = np.union1d(xa[self.b], xb[self.b])
            return int(np.intersect1d(in_a, in_b).size)

        return {"identities": shared(id_a, id_b), "images": shared(img_a, img_b)}

    def to_json(self, labels: np.ndarray) -> dict[str, Any]:
        y = np.asarray(labels)
        return {
            "kind": self.kind,
            "seed": self.seed,
            "rule": IDENTITY_RULE if self.kind == "identity" else PAIR_RULE,
            "n_half_a": int(self.a.sum()),
            "n_half_b": int(self.b.sum()),
            "n_across": int(self.across.sum()),
            "n_half_a_same": int(y[self.a].sum()),
            "n_half_b_same": int(y[self.b].sum()),
        }


def identity_halves(id_a: np.ndarray, id_b: np.ndarray, seed: int = 0) -> Halves:
    """Seeded identity-disjoint halves; depends only on the identities and the seed."""
    ia = np.asarray(id_a, dtype=np.int64)
    ib = np.asarray(id_b, dtype=np.int64)
    idents = np.union1d(ia, ib)
    keys = _pair_keys(idents, seed)  # the same keyed hash, over identity codes
    order = np.lexsort((idents, keys))
    in_b = np.zeros(idents.size, dtype=bool)
    in_b[order[1::2]] = True  # half A gets the odd one out
    side_a = in_b[np.searchsorted(idents, ia)]
    side_b = in_b[np.searchsorted(idents, ib)]
    half = np.where(side_a == side_b, side_a.astype(np.int8), np.int8(ACROSS)).astype(np.int8)
    return Halves(half, "identity", int(seed))


def pair_halves(pair_ids: np.ndarray, labels: np.ndarray, seed: int = 0) -> Halves:
    """The former pair-level halves (kept for records fitted before identity halves)."""
    mask = calibration_mask(pair_ids, labels, seed)
    return Halves(np.where(mask, HALF_A, HALF_B).astype(np.int8), "pair", int(seed))
