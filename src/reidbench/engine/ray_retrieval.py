"""Retrieval metrics with the evaluator's query blocks as Ray tasks.

The plan (query and gallery features, identities) goes into the object store
once; each task computes one block's per-query stats with the evaluator's own
block code (`QueryBlocks.block_stats`), and the driver combines them in block
order, so CMC/mAP/mINP equal the local evaluator's exactly.
"""

from __future__ import annotations

from typing import Any

from reidbench.engine.ray_import import import_ray
from reidbench.metrics.retrieval import Metric, QueryBlocks, RetrievalResult, plan_query_blocks
from reidbench.progress import Progress, reporting


def _block(plan: QueryBlocks, start: int, stop: int) -> Any:
    return plan.block_stats(start, stop)


def ray_evaluate_features(
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
    """`metrics.evaluate_features` (no re-ranking) with its query blocks run on Ray."""
    ray = import_ray()
    plan = plan_query_blocks(
        qf,
        gf,
        q_pids,
        g_pids,
        q_camids,
        g_camids,
        max_rank=max_rank,
        metric=metric,
        chunk_size=chunk_size,
    )
    plan_ref = ray.put(plan)  # once; tasks read it from the object store (zero-copy arrays)
    task = ray.remote(max_retries=3)(_block)
    futures = {task.remote(plan_ref, a, b): (a, b) for a, b in plan.blocks}
    done: dict[int, Any] = {}
    with reporting(progress, "retrieval metrics", plan.num_queries) as bar:
        pending = list(futures)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                a, b = futures[ref]
                done[a] = ray.get(ref)
                bar.advance(b - a)
    acc = plan.accumulator()
    for a, _ in plan.blocks:
        acc.add(a, done[a])
    return acc.result()
