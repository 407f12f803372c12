"""Adapter: any embedder as a hard-negative miner for `reidbench.pairs.curate_pairs`.

The curator's `NegativeMiner` protocol (`reidbench.pairs.hard`) asks for a
`name` (recorded in the pair set's provenance) and `features(records)`; this
extracts them with the shared cache, so mining and later scoring with the same
embedder compute each image once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reidbench.datasets.base import ImageRecord
from reidbench.models.base import Embedder
from reidbench.models.extract import extract_features
from reidbench.models.feature_cache import FeatureCache
from reidbench.progress import Progress


class EmbedderMiner:
    def __init__(
        self,
        embedder: Embedder,
        root: str | os.PathLike[str],
        cache: FeatureCache | None = None,
        *,
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> None:
        self.embedder = embedder
        self.root = Path(root)
        self.cache = cache
        self.batch_size = batch_size
        self.progress = progress
        # Fingerprint, not just the name: two PersonViT checkpoints mine different pairs.
        self.name = embedder.fingerprint

    def features(self, records: Sequence[ImageRecord]) -> np.ndarray:
        return extract_features(
            self.embedder,
            [self.root / r.path for r in records],
            batch_size=self.batch_size,
            cache=self.cache,
            progress=self.progress,
            camids=[r.camid for r in records],
        )
