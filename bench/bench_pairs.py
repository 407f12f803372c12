"""Pair curation speed at real-dataset scale (record lists only; no image files).

Run: .venv/bin/python bench/bench_pairs.py
Datasets are record lists with the official Market-1501 and MSMT17 counts and
random cameras, which is all the curator reads. Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import random
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reidbench.datasets.base import Dataset, ImageRecord
from reidbench.pairs import curate_pairs, pairset_hash, read_pairs, write_pairs


def fake_dataset(
    name: str,
    ids: int,
    query: int,
    gallery: int,
    distractors: int,
    train_ids: int,
    train: int,
    cams: int,
) -> Dataset:
    r = random.Random(0)

    def spread(n_ids: int, n: int, first_pid: int, folder: str) -> list[ImageRecord]:
        out = []
        for k in range(n):
            pid = first_pid + (k % n_ids)
            c = r.randrange(cams)
            out.append(ImageRecord(f"{folder}/{pid:04d}_c{c + 1}s1_{k:06d}_00.jpg", pid, c))
        return out

    g = spread(ids, gallery - distractors, 1, "bounding_box_test")
    g += [
        ImageRecord(f"bounding_box_test/0000_c{(c := r.randrange(cams)) + 1}s1_{k:06d}.jpg", 0, c)
        for k in range(distractors)
    ]
    return Dataset(
        name,
        Path("/data") / name,
        spread(train_ids, train, 2000, "bounding_box_train"),
        spread(ids, query, 1, "query"),
        g,
        cams,
    )


class RandomMiner:
    """256-d random features: the cost of mining, not its quality."""

    name = "random-256"

    def features(self, records: Sequence[ImageRecord]) -> np.ndarray:
        return np.random.default_rng(0).standard_normal((len(records), 256), dtype=np.float32)


def timed(label: str, fn, repeats: int = 3):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    print(f"{label:<58s} {best:8.3f} s", flush=True)
    return out


def main() -> None:
    market = fake_dataset("market1501", 750, 3368, 15913, 2793, 751, 12936, 6)
    msmt = fake_dataset("msmt17", 3060, 11659, 82161, 0, 1041, 32621, 15)
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")
    timed(
        "market q-g 1,000 + 1,000",
        lambda: curate_pairs(market, positives=1000, negatives=1000),
    )
    timed(
        "market q-g 10,000 + 10,000 (+ distractors)",
        lambda: curate_pairs(market, positives=10000, negatives=10000, distractor_negatives=True),
    )
    big = timed(
        "market q-g 40,000 + 100,000",
        lambda: curate_pairs(market, positives=40000, negatives=100000),
    )
    timed(
        "market test 10,000 + 10,000, 1,000 triplets",
        lambda: curate_pairs(market, positives=10000, negatives=10000, split="test", triplets=1000),
    )
    timed(
        "market q-g 1,000 + 5,000, half hard (random 256-d miner)",
        lambda: curate_pairs(market, positives=1000, negatives=5000, negative_miner=RandomMiner()),
    )
    timed(
        "msmt17 q-g 10,000 + 10,000",
        lambda: curate_pairs(msmt, positives=10000, negatives=10000),
    )
    timed(
        "msmt17 train 10,000 + 10,000",
        lambda: curate_pairs(msmt, positives=10000, negatives=10000, split="train"),
    )
    timed("pairset_hash, 140,000 pairs", lambda: pairset_hash(big.table))
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".parquet", ".csv"):
            path = Path(tmp) / f"p{suffix}"
            timed(f"write_pairs {suffix}, 140,000 pairs", lambda p=path: write_pairs(p, big))
            timed(f"read_pairs {suffix} (hash checked), 140,000", lambda p=path: read_pairs(p))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
