"""MSMT17 (V1 and V2): splits come from list files, not from folders.

Each `list_{train,val,query,gallery}.txt` line is `RELPATH PID`, RELPATH under
`train/` or `test/` (V1) or `mask_train_v2/` or `mask_test_v2/` (V2); the camera
is `int(name.split('_')[2])` (1-based, 15 cameras), as in torchreid.

Two deliberate differences from torchreid, both recorded in `Dataset.extra`:
- MSMT17 numbers identities from 0, but in reidbench pid 0 means "distractor";
  every pid is therefore shifted by +1 (`pid_offset`). Retrieval metrics only
  compare pids for equality, so they are unchanged.
- `val_in_train` (default on) adds `list_val.txt` to train, which gives the
  official 32,621-image / 1,041-id training set of the MSMT17 paper. torchreid
  adds val only with `combineall=True`; switch the setting off to match it.
Train and test pids are separate namespaces (both start at 0 in the lists).
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from reidbench.datasets.base import Dataset, ImageRecord
from reidbench.datasets.folders import child_dir, first_dir_with
from reidbench.datasets.market1501 import require_images
from reidbench.datasets.naming import Problems
from reidbench.errors import UserError

VERSIONS = {"V1": ("train", "test"), "V2": ("mask_train_v2", "mask_test_v2")}
SUBDIRS = ("", "MSMT17_V1", "MSMT17_V2", "msmt17/MSMT17_V1", "msmt17/MSMT17_V2", "msmt17", "MSMT17")
LIST_FILES = ("list_train.txt", "list_query.txt", "list_gallery.txt")
NUM_CAMERAS = 15
PID_OFFSET = 1


def find_msmt17_dir(root: Path) -> tuple[Path, str] | None:
    """(folder holding the list files, version) or None."""
    for version, dirs in VERSIONS.items():
        folder = first_dir_with(root, SUBDIRS, (*LIST_FILES, *dirs))
        if folder is not None:
            return folder, version
    return None


def camera_from_name(name: str) -> int | None:
    """torchreid: `int(img_path.split('_')[2])`, e.g. 0000_000_01_0303morning_0015_0.jpg -> 1."""
    parts = name.rpartition("/")[2].split("_", 3)
    if len(parts) < 3 or not (parts[2].isascii() and parts[2].isdigit()):
        return None
    return int(parts[2])


def read_list(list_path: Path, image_dir: str, problems: Problems) -> list[tuple[ImageRecord, int]]:
    """Records (with their line numbers) of one list file; bad lines go to `problems`."""
    try:
        text = list_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read MSMT17 list file {list_path} ({exc}); re-extract it") from exc
    out: list[tuple[ImageRecord, int]] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{list_path} line {lineno}"
        if len(fields) != 2:
            problems.add(f"expected 'PATH PID', got {line.strip()!r}: {where}")
            continue
        rel, pid_text = fields
        try:
            pid = int(pid_text)
        except ValueError:
            problems.add(f"pid {pid_text!r} is not an integer: {where}")
            continue
        if pid < 0:
            problems.add(f"pid {pid} is negative: {where}")
            continue
        camera = camera_from_name(rel)
        if camera is None:
            problems.add(f"no camera in file name {rel!r} (expected PID_SEQ_CAM_...): {where}")
            continue
        if not 1 <= camera <= NUM_CAMERAS:
            problems.add(f"camera {camera} out of range 1..{NUM_CAMERAS} for msmt17: {where}")
            continue
        path = f"{image_dir}/{rel.replace(os.sep, '/').lstrip('/')}"
        if path in seen:
            problems.add(f"{rel} listed twice: {where}")
            continue
        seen.add(path)
        out.append((ImageRecord(path, pid + PID_OFFSET, camera - 1), lineno))
    return out


def check_files_exist(
    folder: Path, entries: list[tuple[ImageRecord, int]], list_path: Path, problems: Problems
) -> None:
    """One scandir per identity folder instead of one stat per image."""
    by_parent: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for record, lineno in entries:
        parent, _, name = record.path.rpartition("/")
        by_parent[parent].append((name, lineno))
    for parent, names in by_parent.items():
        try:
            with os.scandir(folder / parent) as it:
                present = {e.name for e in it}
        except OSError:
            present = set()
        for name, lineno in names:
            if name not in present:
                problems.add(
                    f"listed image {folder / parent / name} is missing: {list_path} line {lineno}"
                )


def load_msmt17(root: Path, *, val_in_train: bool = True) -> Dataset:
    found = find_msmt17_dir(root)
    if found is None:
        raise UserError(
            f"{root} is not an MSMT17 folder: expected {', '.join(LIST_FILES)} with train/ and "
            "test/ (V1) or mask_train_v2/ and mask_test_v2/ (V2); point ROOT at MSMT17_V1/ or "
            "MSMT17_V2/, or pass the right --format"
        )
    folder, version = found
    train_dir, test_dir = (child_dir(folder, d) for d in VERSIONS[version])
    assert train_dir is not None and test_dir is not None  # find_msmt17_dir checked them
    lists = {
        "train": ("list_train.txt", train_dir.name),
        "query": ("list_query.txt", test_dir.name),
        "gallery": ("list_gallery.txt", test_dir.name),
    }
    if val_in_train:
        if not (folder / "list_val.txt").is_file():
            raise UserError(
                f"{folder / 'list_val.txt'} is missing but val images are set to join train; "
                "restore the file or turn the setting off (--msmt17-train-only)"
            )
        lists["val"] = ("list_val.txt", train_dir.name)
    problems = Problems()
    parsed: dict[str, list[ImageRecord]] = {}
    for split, (list_name, image_dir) in lists.items():
        entries = read_list(folder / list_name, image_dir, problems)
        check_files_exist(folder, entries, folder / list_name, problems)
        parsed[split] = [record for record, _ in entries]
    problems.raise_if_any("fix the list files or re-extract MSMT17")
    val = parsed.pop("val", [])
    train = parsed["train"] + val
    if len({r.path for r in train}) != len(train):
        raise UserError(
            f"list_train.txt and list_val.txt in {folder} share images; turn val-in-train off"
            " (--msmt17-train-only) or fix the lists"
        )
    splits = {
        "train": sorted(train, key=lambda r: r.path),
        "query": sorted(parsed["query"], key=lambda r: r.path),
        "gallery": sorted(parsed["gallery"], key=lambda r: r.path),
    }
    require_images(folder, splits)
    return Dataset(
        name="msmt17",
        root=folder,
        train=splits["train"],
        query=splits["query"],
        gallery=splits["gallery"],
        num_cameras=NUM_CAMERAS,
        extra={
            "version": version,
            "val_in_train": val_in_train,
            "val_images": len(val),
            "pid_offset": PID_OFFSET,
        },
    )
