"""Builders and brute-force references shared by the pair tests (no tests in this file)."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from pathlib import Path

from hypothesis import strategies as st

from reidbench.datasets.base import Dataset, ImageRecord


def make_dataset(
    n_ids: int = 12,
    cams: int = 4,
    query_per_id: int = 2,
    gallery_per_id: int = 5,
    distractors: int = 6,
    train_ids: int = 8,
    seed: int = 0,
) -> Dataset:
    """A Market-like record list (no files): cameras drawn at random per image."""
    r = random.Random(seed)
    query, gallery, train = [], [], []
    for pid in range(1, n_ids + 1):
        for k in range(query_per_id + gallery_per_id):
            c = r.randrange(cams)
            rec = ImageRecord(f"img/{pid:04d}_c{c + 1}s1_{k:06d}_00.jpg", pid, c)
            (query if k < query_per_id else gallery).append(rec)
    for k in range(distractors):
        c = r.randrange(cams)
        gallery.append(ImageRecord(f"img/0000_c{c + 1}s1_{k:06d}_00.jpg", 0, c))
    for pid in range(n_ids + 1, n_ids + 1 + train_ids):
        for k in range(query_per_id + gallery_per_id):
            c = r.randrange(cams)
            train.append(ImageRecord(f"train/{pid:04d}_c{c + 1}s1_{k:06d}_00.jpg", pid, c))
    return Dataset("market1501", Path("/data/market"), train, query, gallery, cams)


@st.composite
def small_datasets(draw: st.DrawFn) -> Dataset:
    """Random tiny datasets: uneven identities, cameras, distractors."""
    cams = draw(st.integers(1, 4))
    query, gallery, train = [], [], []
    n_ids = draw(st.integers(1, 7))
    for pid in range(1, n_ids + 1):
        for k, side in enumerate(["q"] * draw(st.integers(0, 3)) + ["g"] * draw(st.integers(0, 4))):
            c = draw(st.integers(0, cams - 1))
            rec = ImageRecord(f"x/{pid:04d}_{side}{k}_c{c}.jpg", pid, c)
            (query if side == "q" else gallery).append(rec)
    for k in range(draw(st.integers(0, 3))):
        c = draw(st.integers(0, cams - 1))
        gallery.append(ImageRecord(f"x/0000_d{k}_c{c}.jpg", 0, c))
    for pid in range(100, 100 + draw(st.integers(0, 4))):
        for k in range(draw(st.integers(1, 4))):
            c = draw(st.integers(0, cams - 1))
            train.append(ImageRecord(f"t/{pid:04d}_{k}_c{c}.jpg", pid, c))
    return Dataset("custom", Path("/d"), train, query, gallery, cams)


def brute_force_pairs(
    dataset: Dataset, split: str, same_camera: bool, distractors: bool
) -> dict[tuple[str, str], int]:
    """Every valid (path_a, path_b) -> label, by the documented rules, by enumeration."""
    out: dict[tuple[str, str], int] = {}

    def ok(a: ImageRecord, b: ImageRecord) -> bool:
        if a.path == b.path or (a.pid == 0 and b.pid == 0):
            return False
        if a.pid == 0 or (b.pid == 0 and not distractors):
            return False
        return same_camera or a.camid != b.camid

    if split == "query-gallery":
        for a in dataset.query:
            for b in dataset.gallery:
                if a.pid > 0 and ok(a, b):
                    out[(a.path, b.path)] = int(a.pid == b.pid)
        return out
    if split == "train":
        pool = [r for r in dataset.train if r.pid > 0]
    else:
        pool = [r for r in dataset.query + dataset.gallery if r.pid > 0 or distractors]
    for a, b in itertools.combinations(pool, 2):
        x, y = sorted((a, b), key=lambda r: (r.pid == 0, r.path))
        if ok(x, y):
            out[(x.path, y.path)] = int(x.pid == y.pid)
    return out


def stratum(cam_a: int, cam_b: int) -> str:
    return f"{min(cam_a, cam_b)}-{max(cam_a, cam_b)}"


def available_by_stratum(
    dataset: Dataset, valid: dict[tuple[str, str], int], label: int
) -> Counter[str]:
    cam = {r.path: r.camid for r in dataset.train + dataset.query + dataset.gallery}
    return Counter(stratum(cam[a], cam[b]) for (a, b), lab in valid.items() if lab == label)


def chosen_by_stratum(rows: list[dict], label: int) -> Counter[str]:
    return Counter(stratum(r["cam_a"], r["cam_b"]) for r in rows if r["label"] == label)


def balanced(chosen: Counter[str], available: Counter[str]) -> bool:
    """Water-filling: a stratum more than one below another must be exhausted."""
    for s in available:
        for t in available:
            if chosen[s] < chosen[t] - 1 and chosen[s] != available[s]:
                return False
    return True


def write_market_tree(root: Path, n_ids: int = 6, cams: int = 3, seed: int = 0) -> Path:
    """A tiny Market-1501 folder (real JPEG files, official naming) for end-to-end CLI tests."""
    from PIL import Image

    r = random.Random(seed)
    img = Image.new("RGB", (8, 16), (120, 80, 40))
    folders = {s: root / s for s in ("bounding_box_train", "query", "bounding_box_test")}
    for f in folders.values():
        f.mkdir(parents=True, exist_ok=True)
    frame = 0

    def put(folder: str, pid: int, cam: int) -> None:
        nonlocal frame
        frame += 1
        name = (
            f"{pid:04d}_c{cam}s1_{frame:06d}_00.jpg"
            if pid >= 0
            else f"-1_c{cam}s1_{frame:06d}_00.jpg"
        )
        img.save(folders[folder] / name, quality=50)

    for pid in range(1, n_ids + 1):
        for c in range(1, cams + 1):
            put("bounding_box_test", pid, c)
        put("query", pid, r.randrange(1, cams + 1))
    for pid in range(n_ids + 1, 2 * n_ids + 1):
        for c in range(1, cams + 1):
            put("bounding_box_train", pid, c)
    for _ in range(3):
        put("bounding_box_test", 0, r.randrange(1, cams + 1))
    put("bounding_box_test", -1, 1)
    return root
