"""The in-memory form of a person ReID dataset that every later stage reads.

A loader only lists files and parses names (no image decoding), so listing
36,000 files costs milliseconds. Paths are stored relative to `Dataset.root`
with POSIX separators, which keeps pair hashes independent of where the data
lives on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLITS = ("train", "query", "gallery")


@dataclass(frozen=True, slots=True)
class ImageRecord:
    path: str  # relative to Dataset.root, POSIX separators
    pid: int  # > 0 identity; 0 distractor (gallery only); junk (-1) is never kept
    camid: int  # 0-based, as torchreid stores it


@dataclass
class Dataset:
    name: str  # format key, e.g. "market1501", "dukemtmcreid", "msmt17", "cuhk03np", "custom"
    root: Path  # folder that ImageRecord.path is relative to
    train: list[ImageRecord]
    query: list[ImageRecord]
    gallery: list[ImageRecord]
    num_cameras: int
    junk_dropped: int = 0
    synthetic: bool = False  # True for `reidbench synth` output: reports say so plainly
    extra: dict[str, object] = field(default_factory=dict)  # loader options worth recording

    def split(self, name: str) -> list[ImageRecord]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)

    def ids(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(pids, camids) of a split as int64 arrays, the form retrieval metrics take."""
        records = self.split(name)
        pids = np.fromiter((r.pid for r in records), dtype=np.int64, count=len(records))
        camids = np.fromiter((r.camid for r in records), dtype=np.int64, count=len(records))
        return pids, camids

    def abspath(self, record: ImageRecord) -> Path:
        return self.root / record.path

    def info(self) -> dict[str, int | str | bool]:
        """Counts as torchreid prints them (distractor pid 0 counts as a gallery id)."""
        return {
            "dataset": self.name,
            "root": str(self.root),
            "synthetic": self.synthetic,
            "train_ids": len({r.pid for r in self.train}),
            "train_images": len(self.train),
            "query_ids": len({r.pid for r in self.query}),
            "query_images": len(self.query),
            "gallery_ids": len({r.pid for r in self.gallery}),
            "gallery_images": len(self.gallery),
            "junk_dropped": self.junk_dropped,
            "distractor_images": sum(1 for r in self.gallery if r.pid == 0),
            "cameras": self.num_cameras,
        }
