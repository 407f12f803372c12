"""How hard is a synthetic set? A plain colour-histogram matcher gives the answer.

A dataset on which colour histograms are perfect cannot separate methods; one on
which they are at chance is noise. `histogram_baseline` measures where a set lies
(Market protocol: same person seen by the same camera is removed from the
gallery; junk (-1) is never used). It reads files directly, so it also works
before any loader exists and on any Market-style tree.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from PIL import Image

from reidbench.errors import UserError

_NAME = re.compile(r"^(-1|\d+)_c(\d)")  # torchreid's Market-1501 file-name pattern
BINS = 8  # per channel: 8x8x8 = 512-bin joint RGB histogram


def list_split(folder: Path) -> list[tuple[str, int, int]]:
    """(path, pid, camid 0-based) of every non-junk JPEG in one Market-style folder."""
    if not folder.is_dir():
        raise UserError(f"{folder} is missing; point at a Market-1501-style dataset root")
    rows = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        m = _NAME.match(entry.name)
        if m is None or not entry.name.lower().endswith((".jpg", ".jpeg")):
            continue
        pid, cam = int(m.group(1)), int(m.group(2))
        if pid >= 0:
            rows.append((entry.path, pid, cam - 1))
    return rows


def colour_histograms(paths: list[str], space: str = "rgb") -> np.ndarray:
    """(N, 512) joint 8x8x8 histograms of whole crops in RGB or HSV, L2-normalised."""
    if space not in ("rgb", "hsv"):
        raise ValueError(f"space must be 'rgb' or 'hsv', not {space!r}")
    shift = 8 - int(np.log2(BINS))
    feats = np.empty((len(paths), BINS**3), np.float32)
    for i, path in enumerate(paths):
        with Image.open(path) as img:
            img = img.convert("RGB")
            if space == "hsv":
                img = img.convert("HSV")
            a = np.asarray(img, dtype=np.uint16) >> shift
        code = (a[..., 0] * BINS + a[..., 1]) * BINS + a[..., 2]
        feats[i] = np.bincount(code.ravel(), minlength=BINS**3)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    return feats


def rank1_and_map(
    dist: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_cams: np.ndarray,
    g_cams: np.ndarray,
) -> tuple[float, float, float, int]:
    """(rank-1, mAP, chance rank-1, queries used) under the Market protocol.

    Kept local and tiny (torchreid's rules) so this check does not depend on the
    metrics stage; queries whose only matches share their camera are skipped.
    """
    hits, aps, chances = [], [], []
    for i in range(dist.shape[0]):
        keep = ~((g_pids == q_pids[i]) & (g_cams == q_cams[i]))
        order = np.argsort(dist[i][keep], kind="stable")
        match = (g_pids[keep] == q_pids[i])[order]
        if not match.any():
            continue
        hits.append(bool(match[0]))
        ranks = np.flatnonzero(match) + 1
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
        chances.append(match.sum() / match.size)
    if not hits:
        raise UserError("no query has a cross-camera match in the gallery; is this a ReID set?")
    return float(np.mean(hits)), float(np.mean(aps)), float(np.mean(chances)), len(hits)


def histogram_baseline(root: Path, space: str = "rgb") -> dict[str, float | int]:
    """Rank-1 and mAP of the colour-histogram matcher on ROOT's query vs gallery."""
    root = Path(root)
    query = list_split(root / "query")
    gallery = list_split(root / "bounding_box_test")
    if not query or not gallery:
        raise UserError(f"{root} has no query or no gallery images")
    qf = colour_histograms([p for p, _, _ in query], space)
    gf = colour_histograms([p for p, _, _ in gallery], space)
    dist = 1.0 - qf @ gf.T  # cosine distance of L2-normalised histograms
    rank1, mean_ap, chance, used = rank1_and_map(
        dist,
        np.array([q[1] for q in query]),
        np.array([g[1] for g in gallery]),
        np.array([q[2] for q in query]),
        np.array([g[2] for g in gallery]),
    )
    return {
        "rank1": rank1,
        "mAP": mean_ap,
        "chance_rank1": chance,
        "queries": used,
        "gallery": len(gallery),
    }
