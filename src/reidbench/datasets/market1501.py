"""Market-1501 and DukeMTMC-reID: one loader for the shared three-folder layout.

Both ship as `bounding_box_train/`, `query/`, `bounding_box_test/` with names
parsed by torchreid's regex; they differ only in what the names may hold
(Market: pid 0..1501, cameras 1..6; Duke: cameras 1..8). CUHK03-NP and
`reidbench synth` output reuse the same layout with their own ranges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from reidbench.datasets.base import Dataset
from reidbench.datasets.folders import child_dir, first_dir_with
from reidbench.datasets.naming import (
    Problems,
    Ranges,
    SkipCounter,
    count_cameras,
    list_image_folder,
)
from reidbench.errors import UserError

SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
SYNTHETIC_MARKER = "reidbench-synthetic.json"
# A Market-style tree we cannot attribute to a known dataset (or `reidbench synth`
# output): any pid >= 0, the one-digit cameras the regex can read, camera count from the data.
GENERIC_RANGES = Ranges(max_pid=None, max_camera=9, num_cameras=None)


@dataclass(frozen=True)
class MarketLayout:
    name: str  # format key
    subdirs: tuple[str, ...]  # where the three folders may live under the given root
    ranges: Ranges


MARKET1501 = MarketLayout(
    "market1501",
    ("", "Market-1501-v15.09.15", "market1501", "market1501/Market-1501-v15.09.15"),
    Ranges(max_pid=1501, max_camera=6, num_cameras=6),
)
DUKEMTMCREID = MarketLayout(
    "dukemtmcreid",
    ("", "DukeMTMC-reID", "dukemtmc-reid", "dukemtmc-reid/DukeMTMC-reID"),
    Ranges(max_pid=None, max_camera=8, num_cameras=8),
)
LAYOUTS = {layout.name: layout for layout in (MARKET1501, DUKEMTMCREID)}


def find_market_dir(root: Path, layout: MarketLayout) -> Path | None:
    return first_dir_with(root, layout.subdirs, SPLIT_FOLDERS.values())


def read_synthetic_marker(folder: Path) -> dict[str, object] | None:
    """The JSON that `reidbench synth` leaves at its output root, or None for real data."""
    marker = folder / SYNTHETIC_MARKER
    if not marker.is_file():
        return None
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(
            f"synthetic-dataset marker {marker} is unreadable ({exc}); "
            "regenerate the data with `reidbench synth`"
        ) from exc
    if not isinstance(data, dict):
        raise UserError(
            f"synthetic-dataset marker {marker} is not a JSON object; "
            "regenerate the data with `reidbench synth`"
        )
    return data


def load_market_layout(root: Path, layout: MarketLayout, *, generic: bool = False) -> Dataset:
    """List the three folders under `root` (or a known subfolder) into a Dataset.

    `generic` relaxes the ranges for a Market-style tree of unknown origin; the
    synthetic marker does the same, since `reidbench synth` may write more ids
    than Market-1501 has.
    """
    folder = find_market_dir(root, layout)
    if folder is None:
        missing = [f for f in SPLIT_FOLDERS.values() if child_dir(root, f) is None]
        raise UserError(
            f"{root} is not a {layout.name} folder: missing {', '.join(missing)}; "
            "point ROOT at the folder holding bounding_box_train/, query/ and bounding_box_test/"
            " or pass the right --format"
        )
    marker = read_synthetic_marker(folder)
    ranges = GENERIC_RANGES if (generic or marker is not None) else layout.ranges
    problems = Problems()
    skipped = SkipCounter()
    splits = {}
    junk = 0
    for split, sub in SPLIT_FOLDERS.items():
        sub_dir = child_dir(folder, sub)
        assert sub_dir is not None  # find_market_dir checked it
        listing = list_image_folder(
            str(sub_dir),
            sub_dir.name,
            split=split,
            ranges=ranges,
            format_name=layout.name,
            problems=problems,
            skipped=skipped,
        )
        splits[split] = listing.records
        junk += listing.junk
    problems.raise_if_any(
        f"rename or remove those files, or pass the right --format (this is read as {layout.name})"
    )
    require_images(folder, splits)
    extra: dict[str, object] = {"skipped": skipped.as_dict(), "ranges": _ranges_note(ranges)}
    if marker is not None:
        extra["synthetic"] = marker
    return Dataset(
        name=layout.name,
        root=folder,
        train=splits["train"],
        query=splits["query"],
        gallery=splits["gallery"],
        num_cameras=count_cameras(ranges, *splits.values()),
        junk_dropped=junk,
        synthetic=marker is not None,
        extra=extra,
    )


def require_images(where: Path, splits: dict[str, list]) -> None:
    """An evaluation needs a query and a gallery; an empty train split is allowed."""
    if not any(splits.values()):
        raise UserError(
            f"no images found in {where}; check that ROOT points at the dataset (not an empty copy)"
        )
    for split in ("query", "gallery"):
        if not splits[split]:
            raise UserError(
                f"the {split} split of {where} has no images; an evaluation needs query and gallery"
                " images"
            )


def _ranges_note(ranges: Ranges) -> str:
    pid = f"0..{ranges.max_pid}" if ranges.max_pid is not None else ">=0"
    cams = ranges.max_camera if ranges.max_camera is not None else 9
    return f"pid {pid}, camera 1..{cams}"
