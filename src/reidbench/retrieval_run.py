"""Retrieval evaluation of an embedder on a dataset's query/gallery split.

The one place that goes from (embedder, dataset) to CMC/mAP/mINP: features
are extracted once for query and gallery together (through the feature cache),
then scored by `metrics.evaluate_features` under the Market-1501 protocol.
Used by `reidbench retrieval` and by experiment runs that ask for retrieval.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reidbench.datasets import Dataset
from reidbench.engine.context import current_engine
from reidbench.errors import UserError
from reidbench.metrics import RetrievalResult, evaluate_features
from reidbench.models import FeatureCache, extract_features
from reidbench.models.base import Embedder
from reidbench.progress import ProgressFactory, no_progress


@dataclass
class EmbedderRetrieval:
    result: RetrievalResult
    stats: dict[str, int] = field(default_factory=dict)  # images, unique, cached, computed
    query_pids: Any = None  # per query (all queries), for the per-query block

    def summary(self) -> dict[str, Any]:
        """`to_dict()` plus, when the query pids are known, each valid query's pid,
        first-match rank (0-based) and AP: the metrics' CMC band resamples identities."""
        out = self.result.to_dict()
        if self.query_pids is not None:
            r = self.result
            valid = np.asarray(r.valid_queries, dtype=np.int64)
            out["per_query"] = {
                "pid": np.asarray(self.query_pids)[valid].astype(np.int64).tolist(),
                "first_match_rank": np.asarray(r.first_match_rank, np.int64).tolist(),
                "AP": np.asarray(r.all_AP, np.float64).tolist(),
            }
        return out


def evaluate_embedder(
    embedder: Embedder,
    dataset: Dataset,
    *,
    cache: FeatureCache | None = None,
    batch_size: int = 64,
    rerank: bool = False,
    max_rank: int = 50,
    progress: ProgressFactory = no_progress,
) -> EmbedderRetrieval:
    """Query-vs-gallery CMC/mAP/mINP (cosine distance) of `embedder` on `dataset`."""
    if not dataset.query or not dataset.gallery:
        raise UserError(
            f"{dataset.root}: retrieval needs query and gallery images "
            f"(found {len(dataset.query)} query, {len(dataset.gallery)} gallery)"
        )
    records = dataset.query + dataset.gallery
    stats: dict[str, int] = {}
    feats = extract_features(
        embedder,
        [dataset.abspath(r) for r in records],
        batch_size=batch_size,
        cache=cache,
        progress=progress("img"),
        stats=stats,
        camids=[r.camid for r in records],
    )
    nq = len(dataset.query)
    q_pids, q_cams = dataset.ids("query")
    g_pids, g_cams = dataset.ids("gallery")
    engine = current_engine()
    # Re-ranking needs the whole (Q+G)^2 matrix in one place: it stays local.
    evaluate = (
        engine.evaluate_features
        if engine is not None and not rerank
        else functools.partial(evaluate_features, rerank=rerank)
    )
    result = evaluate(
        feats[:nq],
        feats[nq:],
        q_pids,
        g_pids,
        q_cams,
        g_cams,
        max_rank=min(max_rank, len(g_pids)),  # torchreid's cut, without its warning
        metric="cosine",
        progress=progress("step" if rerank else "query"),  # re-ranking reports its 4 steps
    )
    return EmbedderRetrieval(result=result, stats=stats, query_pids=q_pids)
