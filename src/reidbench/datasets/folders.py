"""Finding a dataset's folders the way people actually unpack them.

Archives unpack with or without an outer folder and with varying case
(`Market-1501-v15.09.15/`, `market1501/`, `DukeMTMC-reID/`), so each loader
accepts the dataset folder itself or a parent holding one of the known names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from reidbench.errors import UserError


def resolve_root(root: str | os.PathLike[str]) -> Path:
    """Absolute path (symlinks kept, so printed paths match what the user typed)."""
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
    if not path.exists():
        raise UserError(f"dataset path {path} does not exist; check the path")
    return path


def child_dir(parent: Path, name: str) -> Path | None:
    """`parent/name` as a folder, matching each path part case-insensitively."""
    current = parent
    for part in Path(name).parts:
        exact = current / part
        if exact.is_dir():
            current = exact
            continue
        try:
            with os.scandir(current) as entries:
                match = next(
                    (e.name for e in entries if e.name.lower() == part.lower() and e.is_dir()),
                    None,
                )
        except OSError:
            return None
        if match is None:
            return None
        current = current / match
    return current


def first_dir_with(root: Path, candidates: Iterable[str], required: Iterable[str]) -> Path | None:
    """The first of root/candidate that holds every required entry (folder or file)."""
    needed = tuple(required)
    for candidate in candidates:
        folder = child_dir(root, candidate) if candidate else root
        if folder is None or not folder.is_dir():
            continue
        if all(child_dir(folder, r) is not None or (folder / r).is_file() for r in needed):
            return folder
    return None
