"""Dataset listing and verification speed (run by hand; results go in docs/benchmarks.md).

    .venv/bin/python bench/bench_datasets.py [--repeats 5] [--verify-images 3000]
        [--dir DIR] [--msmt17]

Listing: Market-1501 and DukeMTMC-reID trees with the official names and counts
(zero-byte files: listing must never decode). Verification: distinct 128x64
JPEGs (Market's crop size) decoded with the default thread pool.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from reidbench.datasets import load_dataset, verify_images
from tests.dataset_trees import make_duke_official, make_market_official, make_msmt17_official


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds (CPU time is the steadier figure on a shared machine)."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return statistics.median(walls), statistics.median(cpus), result


def count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def bench_listing(tmp: Path, repeats: int, msmt17: bool) -> None:
    makers = [("market1501", make_market_official), ("dukemtmcreid", make_duke_official)]
    if msmt17:
        makers.append(("msmt17", make_msmt17_official))
    for name, make in makers:
        root = tmp / name
        make(root)
        files = count_files(root)
        seconds, cpu, dataset = timed(lambda root=root: load_dataset(root), repeats)
        records = len(dataset.train) + len(dataset.query) + len(dataset.gallery)
        print(
            f"list {name}: {files} files, {records} records, median over {repeats} runs: "
            f"wall {seconds * 1000:.0f} ms ({files / seconds:,.0f} files/s), "
            f"CPU {cpu * 1000:.0f} ms"
        )


def bench_verify(tmp: Path, n: int) -> None:
    root = tmp / "verify"
    rng = np.random.default_rng(0)
    folders = {"bounding_box_train": 0, "query": 1, "bounding_box_test": 2}
    for folder in folders:
        (root / folder).mkdir(parents=True)
    for i in range(n):
        folder = list(folders)[i % 3]
        pixels = rng.integers(0, 255, (128, 64, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
        (root / folder / f"{1 + i // 6:04d}_c{1 + i % 6}s1_{i:06d}_00.jpg").write_bytes(
            buf.getvalue()
        )
    dataset = load_dataset(root)
    for workers in (1, None):
        start = time.perf_counter()
        bad = verify_images(dataset, workers=workers)
        seconds = time.perf_counter() - start
        label = workers or "default"
        print(
            f"verify {n} JPEGs 128x64, workers={label}: {seconds:.2f} s "
            f"({n / seconds:,.0f} images/s), unreadable={len(bad)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--verify-images", type=int, default=3000)
    parser.add_argument("--dir", default=None, help="where to build the trees (default: $TMPDIR)")
    parser.add_argument(
        "--msmt17", action="store_true", help="also list a full-size MSMT17_V1 (126,441 files)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        bench_listing(Path(tmp), args.repeats, args.msmt17)
        bench_verify(Path(tmp), args.verify_images)


if __name__ == "__main__":
    main()
