"""Seeded randomness for pair curation that stays the same across numpy versions.

A published pair set is only reproducible if the same seed picks the same
pairs on every install. numpy guarantees the raw PCG64 bit stream and
`SeedSequence` (NEP 19) but not the output of `Generator` methods such as
`integers` or `permutation`, which have changed between releases. So the few
draws the curator needs (uniform floats, bounded integers, permutations) are
derived here from the raw stream with fixed arithmetic.

Each stage draws from its own named stream, so asking for more negatives does
not change which positives were chosen.
"""

from __future__ import annotations

import hashlib

import numpy as np

_TWO_POW_M53 = 2.0**-53


class StableRng:
    """Uniform draws from a PCG64 stream keyed by (seed, stream name)."""

    def __init__(self, seed: int, stream: str) -> None:
        digest = hashlib.sha256(stream.encode("utf-8")).digest()
        words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
        seed = int(seed)
        entropy = [abs(seed), 1 if seed < 0 else 0, *words]
        self._bits = np.random.PCG64(np.random.SeedSequence(entropy))

    def raw(self, n: int) -> np.ndarray:
        """`n` raw 64-bit words (uint64), the stream numpy keeps stable."""
        return self._bits.random_raw(int(n))

    def uniform(self, n: int) -> np.ndarray:
        """`n` floats in [0, 1) with 53 random bits each."""
        return (self.raw(n) >> np.uint64(11)).astype(np.float64) * _TWO_POW_M53

    def below(self, high: int | np.ndarray, n: int | None = None) -> np.ndarray:
        """Integers uniform in [0, high) (`high` > 0, scalar or per-draw array).

        The float route has a bias below 2**-53 * high, far under anything
        measurable for the sizes pairs come in.
        """
        high_arr = np.asarray(high, dtype=np.int64)
        count = int(high_arr.size) if n is None else int(n)
        out = np.floor(self.uniform(count) * high_arr).astype(np.int64)
        return np.minimum(out, high_arr - 1)

    def permutation(self, n: int) -> np.ndarray:
        """A random order of range(n) (ties between equal words broken by index)."""
        return np.argsort(self.raw(n), kind="stable")

    def sample(self, n: int, k: int) -> np.ndarray:
        """`k` distinct integers from range(n), in random order."""
        if k > n:
            raise ValueError(f"cannot sample {k} of {n}")
        if k == 0:
            return np.zeros(0, dtype=np.int64)
        if 4 * k >= n:
            return self.permutation(n)[:k].astype(np.int64)
        chosen: list[np.ndarray] = []
        seen = np.zeros(0, dtype=np.int64)
        while seen.size < k:
            draw = self.below(n, 2 * (k - seen.size) + 8)
            _, first = np.unique(draw, return_index=True)
            draw = draw[np.sort(first)]
            draw = draw[~np.isin(draw, seen)]
            draw = draw[: k - seen.size]
            chosen.append(draw)
            seen = np.concatenate([seen, draw])
        return np.concatenate(chosen)
