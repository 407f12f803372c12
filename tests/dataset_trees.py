"""Build dataset trees on disk with the real datasets' file-name patterns and counts.

Listing never decodes, so the big trees use zero-byte files (fast to create);
trees meant for `--verify` get one real tiny JPEG/PNG, hard-linked.
"""

from __future__ import annotations

import io
import os
import random
import shutil
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

# Official counts (torchreid prints these; ids include pid 0 in Market's gallery).
MARKET_COUNTS = {
    "train_ids": 751,
    "train_images": 12936,
    "query_ids": 750,
    "query_images": 3368,
    "gallery_ids": 751,
    "gallery_images": 15913,
    "junk_dropped": 3819,
    "distractor_images": 2793,
    "cameras": 6,
}
DUKE_COUNTS = {
    "train_ids": 702,
    "train_images": 16522,
    "query_ids": 702,
    "query_images": 2228,
    "gallery_ids": 1110,
    "gallery_images": 17661,
    "junk_dropped": 0,
    "distractor_images": 0,
    "cameras": 8,
}


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (8, 16), colour=(120, 30, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


def create_files(paths: Iterable[Path], source: Path | None = None) -> int:
    """Zero-byte files, or hard links to `source` (copies where links are refused)."""
    n = 0
    for path in paths:
        if source is None:
            with open(path, "xb"):
                pass
        else:
            try:
                os.link(source, path)
            except OSError:
                shutil.copyfile(source, path)
        n += 1
    return n


def _spread(total: int, groups: int) -> list[int]:
    """`total` split over `groups` as evenly as possible (the first ones get one more)."""
    base, extra = divmod(total, groups)
    return [base + (1 if i < extra else 0) for i in range(groups)]


def _market_name(pid: int, cam: int, frame: int) -> str:
    prefix = "-1" if pid == -1 else f"{pid:04d}"
    return f"{prefix}_c{cam}s{1 + frame % 6}_{frame:06d}_{frame % 7:02d}.jpg"


def _duke_name(pid: int, cam: int, frame: int) -> str:
    return f"{pid:04d}_c{cam}_f{frame:07d}.jpg"


def _write_split(folder: Path, names: list[str], source: Path | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    assert len(set(names)) == len(names)
    create_files((folder / n for n in names), source)


def make_market_official(root: Path, source: Path | None = None) -> dict[str, int]:
    """Market-1501 as released: 12,936 train / 3,368 query / 19,732 bounding_box_test files."""
    rng = random.Random(1501)
    pids = list(range(1, 1502))
    rng.shuffle(pids)
    train_ids, test_ids = sorted(pids[:751]), sorted(pids[751:])
    frame = iter(range(1, 10**6))
    train = [
        _market_name(pid, 1 + (pid + j) % 6, next(frame))
        for pid, k in zip(train_ids, _spread(12936, 751), strict=True)
        for j in range(k)
    ]
    query = [
        _market_name(pid, 1 + (pid + j) % 6, next(frame))
        for pid, k in zip(test_ids, _spread(3368, 750), strict=True)
        for j in range(k)
    ]
    gallery = [
        _market_name(pid, 1 + (pid + j + 1) % 6, next(frame))
        for pid, k in zip(test_ids, _spread(13120, 750), strict=True)
        for j in range(k)
    ]
    gallery += [_market_name(0, 1 + j % 6, next(frame)) for j in range(2793)]
    gallery += [_market_name(-1, 1 + j % 6, next(frame)) for j in range(3819)]
    _write_split(root / "bounding_box_train", train, source)
    _write_split(root / "query", query, source)
    _write_split(root / "bounding_box_test", gallery, source)
    return dict(MARKET_COUNTS)


def make_duke_official(root: Path, source: Path | None = None) -> dict[str, int]:
    """DukeMTMC-reID: 702 train ids, 702 query ids, 408 gallery-only distractor ids, 8 cameras."""
    rng = random.Random(702)
    pids = rng.sample(range(1, 7141), 702 + 1110)
    train_ids, test_ids = sorted(pids[:702]), sorted(pids[702:])
    query_ids = test_ids[:702]
    frame = iter(range(1, 10**7))
    train = [
        _duke_name(pid, 1 + (pid + j) % 8, next(frame))
        for pid, k in zip(train_ids, _spread(16522, 702), strict=True)
        for j in range(k)
    ]
    query = [
        _duke_name(pid, 1 + (pid + j) % 8, next(frame))
        for pid, k in zip(query_ids, _spread(2228, 702), strict=True)
        for j in range(k)
    ]
    gallery = [
        _duke_name(pid, 1 + (pid + j + 1) % 8, next(frame))
        for pid, k in zip(test_ids, _spread(17661, 1110), strict=True)
        for j in range(k)
    ]
    _write_split(root / "bounding_box_train", train, source)
    _write_split(root / "query", query, source)
    _write_split(root / "bounding_box_test", gallery, source)
    return dict(DUKE_COUNTS)


def make_market_small(
    root: Path,
    *,
    train_ids: int = 3,
    test_ids: int = 3,
    per_id: int = 3,
    junk: int = 2,
    distractors: int = 2,
    cameras: int = 6,
    first_pid: int = 1,
    source: Path | None = None,
) -> Path:
    """A few ids in Market naming; `source` None writes real tiny JPEGs (hard-linked)."""
    if source is None:
        root.mkdir(parents=True, exist_ok=True)
        source = root.parent / f".{root.name}-tiny.jpg"
        source.write_bytes(image_bytes())
    frame = iter(range(1, 10**6))
    pids = list(range(first_pid, first_pid + train_ids + test_ids))
    train = [
        _market_name(p, 1 + (p + j) % cameras, next(frame))
        for p in pids[:train_ids]
        for j in range(per_id)
    ]
    query = [_market_name(p, 1 + p % cameras, next(frame)) for p in pids[train_ids:]]
    gallery = [
        _market_name(p, 1 + (p + 1 + j) % cameras, next(frame))
        for p in pids[train_ids:]
        for j in range(per_id)
    ]
    gallery += [_market_name(0, 1 + j % cameras, next(frame)) for j in range(distractors)]
    gallery += [_market_name(-1, 1 + j % cameras, next(frame)) for j in range(junk)]
    _write_split(root / "bounding_box_train", train, source)
    _write_split(root / "query", query, source)
    _write_split(root / "bounding_box_test", gallery, source)
    return root


def msmt17_name(pid: int, idx: int, cam: int, frame: int) -> str:
    """Real pattern: 0000_000_01_0303morning_0015_0.jpg (pid, index, camera, date+time, frame)."""
    return f"{pid:04d}_{idx:03d}_{cam:02d}_0303morning_{frame:04d}_0.jpg"


def make_msmt17(root: Path, *, version: str = "V1", source: Path | None = None) -> dict[str, int]:
    """A small MSMT17 tree with list files; returns the expected counts.

    Train lists: pids 0..3 in list_train (8 images), pid 4 only in list_val (2 images),
    and one val image of pid 0. Test: pids 0..2, one query per id, 3 gallery images each.
    """
    train_dir, test_dir = {"V1": ("train", "test"), "V2": ("mask_train_v2", "mask_test_v2")}[
        version
    ]
    main = root / f"MSMT17_{version}"
    lists: dict[str, list[str]] = {"train": [], "val": [], "query": [], "gallery": []}

    def add(split: str, folder: str, pid: int, idx: int, cam: int) -> None:
        name = msmt17_name(pid, idx, cam, 10 + idx)
        rel = f"{pid:04d}/{name}"
        (main / folder / f"{pid:04d}").mkdir(parents=True, exist_ok=True)
        create_files([main / folder / rel], source)
        lists[split].append(f"{rel} {pid}")

    for pid in range(4):
        for idx in range(2):
            add("train", train_dir, pid, idx, 1 + (pid + idx) % 15)
    add("val", train_dir, 4, 0, 15)
    add("val", train_dir, 4, 1, 14)
    add("val", train_dir, 0, 2, 9)
    for pid in range(3):
        add("query", test_dir, pid, 0, 1 + pid)
        for idx in range(1, 4):
            add("gallery", test_dir, pid, idx, 1 + (pid + idx) % 15)
    for split, lines in lists.items():
        (main / f"list_{split}.txt").write_text("\n".join(lines) + "\n")
    return {
        "train_ids": 5,
        "train_images": 11,
        "train_only_images": 8,
        "train_only_ids": 4,
        "query_ids": 3,
        "query_images": 3,
        "gallery_ids": 3,
        "gallery_images": 9,
        "cameras": 15,
    }


def make_cuhk03np(root: Path, *, source: Path | None = None) -> Path:
    """cuhk03-np/{detected,labeled}: 2 train ids, 2 test ids, PNG names like 0001_c1_1.png.

    detected: 4 train / 2 query / 4 gallery images; labeled: 5 / 2 / 3.
    """
    top = root / "cuhk03-np"
    shapes = {"detected": (2, 1, 2), "labeled": ((3, 2), 1, (2, 1))}
    for variant in ("detected", "labeled"):
        train_counts, _, gallery_counts = shapes[variant]
        train_counts = (
            (train_counts, train_counts) if isinstance(train_counts, int) else train_counts
        )
        gallery_counts = (
            (gallery_counts, gallery_counts) if isinstance(gallery_counts, int) else gallery_counts
        )
        folder = top / variant
        idx = iter(range(1, 1000))
        train = [
            f"{pid:04d}_c{1 + j % 2}_{next(idx)}.png"
            for pid, k in zip((1, 2), train_counts, strict=True)
            for j in range(k)
        ]
        query = [f"{pid:04d}_c1_{next(idx)}.png" for pid in (3, 4)]
        gallery = [
            f"{pid:04d}_c2_{next(idx)}.png"
            for pid, k in zip((3, 4), gallery_counts, strict=True)
            for _ in range(k)
        ]
        _write_split(folder / "bounding_box_train", train, source)
        _write_split(folder / "query", query, source)
        _write_split(folder / "bounding_box_test", gallery, source)
    return top


MSMT17_COUNTS = {
    "train_ids": 1041,
    "train_images": 32621,  # list_train 30,248 + list_val 2,373
    "query_ids": 3060,
    "query_images": 11659,
    "gallery_ids": 3060,
    "gallery_images": 82161,
    "junk_dropped": 0,
    "distractor_images": 0,
    "cameras": 15,
}


def make_msmt17_official(root: Path, source: Path | None = None) -> dict[str, int]:
    """MSMT17_V1 with the official list sizes (126,441 files): for the benchmark."""
    main = root / "MSMT17_V1"
    lists: dict[str, list[str]] = {}
    plan = {
        "train": ("train", 1041, 30248),
        "val": ("train", 1041, 2373),
        "query": ("test", 3060, 11659),
        "gallery": ("test", 3060, 82161),
    }
    counter = iter(range(10**7))
    for split, (folder, ids, images) in plan.items():
        lines = []
        for pid, k in zip(range(ids), _spread(images, ids), strict=True):
            (main / folder / f"{pid:04d}").mkdir(parents=True, exist_ok=True)
            for j in range(k):
                n = next(counter)
                rel = f"{pid:04d}/{msmt17_name(pid, n // 10000, 1 + (pid + j) % 15, n % 10000)}"
                lines.append(f"{rel} {pid}")
        create_files((main / folder / line.split(" ")[0] for line in lines), source)
        lists[split] = lines
    for split, lines in lists.items():
        (main / f"list_{split}.txt").write_text("\n".join(lines) + "\n")
    return dict(MSMT17_COUNTS)
