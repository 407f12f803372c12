"""The Ray engine: connect (or start a local instance), run features and retrieval on it.

`address=None` starts a private local Ray instance (closed again by `close`);
`"auto"` joins the cluster this machine belongs to (`ray start --head` /
`ray start --address ...`); `"ray://host:10001"` goes through Ray Client. When
Ray is already initialised in this process (a notebook, the test fixture), the
engine uses that instance and leaves it running.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from reidbench.engine.ray_import import import_ray
from reidbench.errors import UserError
from reidbench.metrics.retrieval import Metric, RetrievalResult
from reidbench.models.base import Embedder
from reidbench.models.feature_cache import FeatureCache
from reidbench.progress import Progress


class RayEngine:
    kind = "ray"

    def __init__(self, address: str | None = None, *, actors: int | None = None) -> None:
        ray = import_ray()
        self._owns = not ray.is_initialized()
        if self._owns:
            try:
                ray.init(
                    address=address or None,
                    include_dashboard=False,
                    logging_level="WARNING",
                    log_to_driver=False,
                    configure_logging=True,
                )
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise UserError(
                    f"cannot connect to the Ray cluster at {address or 'a new local instance'} "
                    f"({exc}); start one with `ray start --head` or check --ray-address"
                ) from exc
        # Our own bars, driven from the driver, replace Ray Data's per-operator ones;
        # its per-dataset INFO lines would bury them.
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        # A worker's UserError (a broken image) must reach the driver as itself, not as
        # Ray Data's UserCodeException wrapper, so the CLI prints its one line.
        ctx.raise_original_map_exception = True
        self.actors = actors

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
    ) -> np.ndarray:
        from reidbench.engine.ray_features import ray_extract_features

        return ray_extract_features(
            embedder,
            paths,
            batch_size=batch_size,
            cache=cache,
            progress=progress,
            stats=stats,
            camids=camids,
            actors=self.actors,
        )

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
    ) -> RetrievalResult:
        from reidbench.engine.ray_retrieval import ray_evaluate_features

        return ray_evaluate_features(
            qf,
            gf,
            q_pids,
            g_pids,
            q_camids,
            g_camids,
            max_rank=max_rank,
            metric=metric,
            chunk_size=chunk_size,
            progress=progress,
        )

    def close(self) -> None:
        if self._owns:
            import ray

            ray.shutdown()
            self._owns = False
