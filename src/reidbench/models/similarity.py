"""Pair scores from an embedder: cosine similarity, and its documented 0-1 mapping.

Features are L2-normalised, so the cosine of a pair is the dot product of its
rows, in [-1, 1]. Reports and fusion need a score in [0, 1] next to the LVLMs'
similarities, so `cosine_to_unit(c) = (c + 1) / 2`: a monotone, affine map
that keeps rankings, AUC and thresholds equivalent (threshold t on the unit
scale is cosine 2t - 1). It is not a probability; calibration is a metrics
concern.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reidbench.models.base import Embedder
from reidbench.models.extract import extract_features
from reidbench.models.feature_cache import FeatureCache
from reidbench.progress import Progress

_ROWS = 65536  # pairs per dot-product chunk: bounds memory for million-pair sets


def cosine_to_unit(cos: float | np.ndarray) -> float | np.ndarray:
    """Map cosine similarity in [-1, 1] to a score in [0, 1]: (cos + 1) / 2."""
    if isinstance(cos, np.ndarray):
        return (cos + 1.0) / 2.0
    return (float(cos) + 1.0) / 2.0


def pair_scores(
    embedder: Embedder,
    root: str | os.PathLike[str],
    path_a: Sequence[str],
    path_b: Sequence[str],
    *,
    cache: FeatureCache | None = None,
    batch_size: int = 64,
    progress: Progress | None = None,
    camids_a: Sequence[int] | None = None,
    camids_b: Sequence[int] | None = None,
) -> np.ndarray:
    """Cosine similarity (float64, clipped to [-1, 1]) of each pair (root/a_i, root/b_i).

    Each distinct image is embedded once, however many pairs it appears in. `camids_a`
    and `camids_b` (0-based; an image has one camera) reach camera-aware (SIE) models.
    """
    if len(path_a) != len(path_b):
        raise ValueError(f"path_a has {len(path_a)} entries but path_b has {len(path_b)}")
    base = Path(root)
    unique = sorted(set(path_a) | set(path_b))
    index = {p: i for i, p in enumerate(unique)}
    cam_of: dict[str, int] | None = None
    if camids_a is not None and camids_b is not None:
        cam_of = dict(zip(path_a, (int(c) for c in camids_a), strict=True))
        cam_of.update(zip(path_b, (int(c) for c in camids_b), strict=True))
    feats = extract_features(
        embedder,
        [base / p for p in unique],
        batch_size=batch_size,
        cache=cache,
        progress=progress,
        camids=[cam_of[p] for p in unique] if cam_of is not None else None,
    )
    ia = np.fromiter((index[p] for p in path_a), dtype=np.int64, count=len(path_a))
    ib = np.fromiter((index[p] for p in path_b), dtype=np.int64, count=len(path_b))
    scores = np.empty(len(ia), dtype=np.float64)
    for s in range(0, len(ia), _ROWS):
        fa = feats[ia[s : s + _ROWS]].astype(np.float64)
        fb = feats[ib[s : s + _ROWS]].astype(np.float64)
        scores[s : s + _ROWS] = np.einsum("ij,ij->i", fa, fb)
    return np.clip(scores, -1.0, 1.0)
