"""torchreid's file-name protocol, shared by every Market-style loader.

torchreid reads `pid` and the 1-based camera from a file name with one regex,
`([-\\d]+)_c(\\d)`, drops pid -1 (junk), keeps pid 0 (distractors) and stores the
camera 0-based. We apply the regex to the file name only (torchreid searches the
whole path, which misfires on folders such as `run_c1/`), and turn its asserts
into a list of problems so that a broken tree is reported in one line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from reidbench.datasets.base import ImageRecord
from reidbench.errors import UserError

NAME_PATTERN = re.compile(r"([-\d]+)_c(\d)")
JUNK_PID = -1
DISTRACTOR_PID = 0
# Files with these suffixes "look like images": in an image folder they must follow the
# naming rule. Anything else (Thumbs.db, .DS_Store, readme.txt) is skipped and counted.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
MAX_EXAMPLES = 3


def looks_like_image(name: str) -> bool:
    """Hidden files (macOS `._x.jpg` forks) are never images, as torchreid's glob agrees."""
    if name.startswith("."):
        return False
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in IMAGE_SUFFIXES


def parse_name(name: str) -> tuple[int, int] | None:
    """(pid, 1-based camera) from a file name, or None when the name breaks the rule."""
    match = NAME_PATTERN.search(name)
    if match is None:
        return None
    try:
        return int(match.group(1)), int(match.group(2))
    except ValueError:  # e.g. "12-3_c1": the character class allows stray minus signs
        return None


@dataclass(frozen=True)
class Ranges:
    """What a format allows; None means "no upper bound" (cameras then come from the data)."""

    max_pid: int | None
    max_camera: int | None  # 1-based, inclusive
    num_cameras: int | None  # the dataset's camera count; None: max camid + 1 in the data


@dataclass
class Problems:
    """Collects bad files so the user sees the first few and a count, in one line."""

    items: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.items.append(message)

    def raise_if_any(self, advice: str) -> None:
        if not self.items:
            return
        first = "; ".join(self.items[:MAX_EXAMPLES])
        more = len(self.items) - MAX_EXAMPLES
        tail = f" (and {more} more)" if more > 0 else ""
        raise UserError(f"{first}{tail}; {advice}")


@dataclass
class SkipCounter:
    """Non-image entries in image folders: skipped like torchreid's `*.jpg` glob, but counted."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, relpath: str) -> None:
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(relpath)

    def as_dict(self) -> dict[str, object]:
        return {"count": self.count, "examples": list(self.examples)}


@dataclass
class FolderListing:
    records: list[ImageRecord]
    junk: int


def check_record(
    pid: int,
    camera: int,
    *,
    split: str,
    ranges: Ranges,
    format_name: str,
    where: str,
    problems: Problems,
) -> bool:
    """torchreid's asserts (pid range, camera range) plus our pid-0-only-in-gallery rule."""
    if pid < DISTRACTOR_PID:
        problems.add(f"pid {pid} is not allowed (only -1 junk, 0 distractor, >0 identity): {where}")
        return False
    if ranges.max_pid is not None and pid > ranges.max_pid:
        problems.add(f"pid {pid} out of range 0..{ranges.max_pid} for {format_name}: {where}")
        return False
    if pid == DISTRACTOR_PID and split != "gallery":
        problems.add(f"distractor pid 0 outside the gallery ({split}): {where}")
        return False
    top = ranges.max_camera if ranges.max_camera is not None else 9
    if not 1 <= camera <= top:
        problems.add(f"camera {camera} out of range 1..{top} for {format_name}: {where}")
        return False
    return True


def list_image_folder(
    folder: str,
    rel_prefix: str,
    *,
    split: str,
    ranges: Ranges,
    format_name: str,
    problems: Problems,
    skipped: SkipCounter,
) -> FolderListing:
    """One `os.scandir` pass, one regex per name, no image decoding (36k files in ms)."""
    records: list[ImageRecord] = []
    junk = 0
    prefix = f"{rel_prefix}/" if rel_prefix else ""
    # Fast path for the common valid name; `check_record` words the error otherwise.
    max_pid = ranges.max_pid if ranges.max_pid is not None else float("inf")
    max_camera = ranges.max_camera if ranges.max_camera is not None else 9
    min_pid = 0 if split == "gallery" else 1
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if not looks_like_image(name) or not entry.is_file():
                skipped.add(prefix + name)
                continue
            parsed = parse_name(name)
            if parsed is None:
                problems.add(
                    f"file name does not match the pattern PID_cCAM (regex {NAME_PATTERN.pattern})"
                    f": {os.path.join(folder, name)}"
                )
                continue
            pid, camera = parsed
            if pid == JUNK_PID:
                junk += 1
            elif min_pid <= pid <= max_pid and 1 <= camera <= max_camera:
                records.append(ImageRecord(prefix + name, pid, camera - 1))
            else:
                check_record(
                    pid,
                    camera,
                    split=split,
                    ranges=ranges,
                    format_name=format_name,
                    where=os.path.join(folder, name),
                    problems=problems,
                )
    records.sort(key=lambda r: r.path)
    return FolderListing(records=records, junk=junk)


def count_cameras(ranges: Ranges, *splits: list[ImageRecord]) -> int:
    if ranges.num_cameras is not None:
        return ranges.num_cameras
    return 1 + max((r.camid for split in splits for r in split), default=-1)
