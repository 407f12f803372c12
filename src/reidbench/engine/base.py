"""The interface a distributed engine implements (the local engine is the library itself)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from reidbench.metrics.retrieval import Metric, RetrievalResult
from reidbench.models.base import Embedder
from reidbench.models.feature_cache import FeatureCache
from reidbench.progress import Progress

ENGINE_KINDS = ("local", "ray")


class Engine(Protocol):
    """Runs the heavy stages elsewhere; results equal the local path's, the driver owns caches."""

    kind: str

    def extract_features(
        self,
        embedder: Embedder,
        paths: Sequence[str | os.PathLike[str]],
        *,
        batch_size: int = 64,
        cache: FeatureCache | None = None,
        progress: Progress | None = None,
        stats: dict[str, int] | None = None,
        camids: Sequence[int] | None = None,
    ) -> np.ndarray: ...

    def evaluate_features(
        self,
        qf: Any,
        gf: Any,
        q_pids: Any,
        g_pids: Any,
        q_camids: Any,
        g_camids: Any,
        *,
        max_rank: int = 50,
        metric: Metric = "cosine",
        chunk_size: int | None = None,
        progress: Progress | None = None,
    ) -> RetrievalResult: ...

    def close(self) -> None: ...
