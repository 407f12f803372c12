"""A custom dataset described by a CSV manifest: `path,pid,camid,split`.

For data that does not follow a known layout. `path` is relative to the
manifest's folder (which becomes `Dataset.root`); `pid` follows the Market
convention (-1 junk, dropped and counted; 0 distractor, gallery only; > 0 an
identity); `camid` is 0-based as written; `split` is train, query or gallery.
Extra columns are ignored. Every row is checked and errors name the row.
"""

from __future__ import annotations

import csv
import os
import posixpath
from collections import defaultdict
from pathlib import Path

from reidbench.datasets.base import SPLITS, Dataset, ImageRecord
from reidbench.datasets.market1501 import require_images
from reidbench.datasets.naming import DISTRACTOR_PID, JUNK_PID, Problems
from reidbench.errors import UserError
from reidbench.files import sha256_file

MANIFEST_NAME = "manifest.csv"
COLUMNS = ("path", "pid", "camid", "split")


def find_manifest(root: Path) -> Path | None:
    if root.is_file():
        return root if root.suffix.lower() == ".csv" else None
    candidate = root / MANIFEST_NAME
    return candidate if candidate.is_file() else None


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def load_custom(root: Path) -> Dataset:
    manifest = find_manifest(root)
    if manifest is None:
        raise UserError(
            f"no manifest at {root}: a custom dataset needs {MANIFEST_NAME} (columns "
            f"{','.join(COLUMNS)}) in the folder, or ROOT given as the .csv file itself"
        )
    folder = manifest.parent
    problems = Problems()
    splits: dict[str, list[ImageRecord]] = {s: [] for s in SPLITS}
    rows_of: dict[str, int] = {}
    junk = 0
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise UserError(
                    f"manifest {manifest} lacks column(s) {', '.join(missing)}; the first line "
                    f"must be a header with {','.join(COLUMNS)}"
                )
            reader.fieldnames = header
            for row in reader:
                where = f"{manifest} row {reader.line_num}"
                record = _parse_row(row, where, problems)
                if record is None:
                    continue
                split, rec = record
                if rec.pid == JUNK_PID:
                    junk += 1
                    continue
                if rec.path in rows_of:
                    problems.add(
                        f"{rec.path} listed twice (first at row {rows_of[rec.path]}): {where}"
                    )
                    continue
                rows_of[rec.path] = reader.line_num
                splits[split].append(rec)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read manifest {manifest} ({exc}); check the file") from exc
    _check_files_exist(folder, rows_of, manifest, problems)
    problems.raise_if_any("fix those rows of the manifest")
    for split in SPLITS:
        splits[split].sort(key=lambda r: r.path)
    require_images(manifest, splits)
    cameras = 1 + max((r.camid for s in splits.values() for r in s), default=-1)
    return Dataset(
        name="custom",
        root=folder,
        train=splits["train"],
        query=splits["query"],
        gallery=splits["gallery"],
        num_cameras=cameras,
        junk_dropped=junk,
        extra={"manifest": manifest.name, "manifest_sha256": sha256_file(manifest)},
    )


def _parse_row(
    row: dict[str, str | None], where: str, problems: Problems
) -> tuple[str, ImageRecord] | None:
    path = (row.get("path") or "").strip().replace("\\", "/")
    pid = _int(row.get("pid") or "")
    camid = _int(row.get("camid") or "")
    split = (row.get("split") or "").strip().lower()
    if not path:
        problems.add(f"empty path: {where}")
    elif posixpath.isabs(path) or os.path.isabs(path):
        problems.add(f"path {path!r} must be relative to the manifest's folder: {where}")
    elif pid is None:
        problems.add(f"pid {row.get('pid')!r} is not an integer: {where}")
    elif pid < JUNK_PID:
        problems.add(f"pid {pid} is not allowed (-1 junk, 0 distractor, >0 identity): {where}")
    elif camid is None or camid < 0:
        problems.add(f"camid {row.get('camid')!r} is not a 0-based integer: {where}")
    elif split not in SPLITS:
        problems.add(f"split {row.get('split')!r} is not one of {', '.join(SPLITS)}: {where}")
    elif pid == DISTRACTOR_PID and split != "gallery":
        problems.add(f"distractor pid 0 outside the gallery ({split}): {where}")
    else:
        return split, ImageRecord(posixpath.normpath(path), pid, camid)
    return None


def _check_files_exist(
    folder: Path, rows_of: dict[str, int], manifest: Path, problems: Problems
) -> None:
    """One scandir per folder named in the manifest instead of one stat per image."""
    by_parent: dict[str, list[str]] = defaultdict(list)
    for path in rows_of:
        by_parent[posixpath.dirname(path)].append(path)
    for parent, paths in by_parent.items():
        try:
            with os.scandir(folder / parent if parent else folder) as it:
                present = {e.name for e in it if e.is_file()}
        except OSError:
            present = set()
        for path in paths:
            if posixpath.basename(path) not in present:
                problems.add(f"image {folder / path} is missing: {manifest} row {rows_of[path]}")
