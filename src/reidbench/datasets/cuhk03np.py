"""CUHK03-NP: the new (767/700) protocol of Zhong et al., CVPR 2017.

It ships as `cuhk03-np/{detected,labeled}/{bounding_box_train,query,bounding_box_test}/`
with Market-style PNG names such as `0001_c1_1.png` (two cameras). Expected
counts: detected 7,365 train / 1,400 query / 5,332 gallery images; labeled
7,368 / 1,400 / 5,328; 767 train ids and 700 test ids in both.
"""

from __future__ import annotations

from pathlib import Path

from reidbench.datasets.base import Dataset
from reidbench.datasets.folders import child_dir
from reidbench.datasets.market1501 import SPLIT_FOLDERS, MarketLayout, load_market_layout
from reidbench.datasets.naming import Ranges
from reidbench.errors import UserError

VARIANTS = ("detected", "labeled")
PARENT_NAMES = ("cuhk03-np", "cuhk03_np", "cuhk03np")
CUHK03NP = MarketLayout("cuhk03np", ("",), Ranges(max_pid=None, max_camera=2, num_cameras=2))


def is_variant_dir(folder: Path) -> bool:
    return all(child_dir(folder, sub) is not None for sub in SPLIT_FOLDERS.values())


def find_cuhk03np_dir(root: Path, variant: str) -> tuple[Path, str] | None:
    """(variant folder, variant) for root = the variant folder, `cuhk03-np/` or its parent.

    When ROOT is itself `detected/` or `labeled/`, the folder decides the variant.
    """
    if is_variant_dir(root):
        name = root.name.lower()
        return root, (name if name in VARIANTS else variant)
    for parent in ("", *PARENT_NAMES):
        base = child_dir(root, parent) if parent else root
        if base is None:
            continue
        folder = child_dir(base, variant)
        if folder is not None and is_variant_dir(folder):
            return folder, variant
    return None


def load_cuhk03np(root: Path, *, variant: str = "detected") -> Dataset:
    if variant not in VARIANTS:
        raise UserError(f"unknown CUHK03-NP variant {variant!r}; use one of {', '.join(VARIANTS)}")
    found = find_cuhk03np_dir(root, variant)
    others = [v for v in VARIANTS if v != variant and find_cuhk03np_dir(root, v) is not None]
    if found is None and others:
        raise UserError(
            f"{root} has no CUHK03-NP {variant}/ folder, only {others[0]}/; "
            f"pass --cuhk03-variant {others[0]} or point ROOT at the variant folder"
        )
    if found is None:
        raise UserError(
            f"{root} is not a CUHK03-NP folder: expected {variant}/bounding_box_train, "
            f"{variant}/query and {variant}/bounding_box_test (cuhk03-np layout); "
            "point ROOT at cuhk03-np/ or cuhk03-np/<variant>/, or pass the right --format"
        )
    folder, variant = found
    dataset = load_market_layout(folder, CUHK03NP)
    dataset.extra["variant"] = variant
    return dataset
