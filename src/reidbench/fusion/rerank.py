"""LVLM re-ranking of retrieval lists: pure functions over a query x gallery distance matrix.

Protocol (docs/fusion.md):
- Queries: a seeded subset (`numpy.random.default_rng(seed).choice`, without replacement)
  of the queries that have at least one true match left after the Market-1501 junk
  rule, sorted by index; or all of them.
- Top-k: per query, the k gallery items with the smallest distance (stable order: ties
  by gallery index) **after** removing the protocol's junk (same pid and same camera as
  the query), so the LVLM is never asked about an item the metrics ignore.
- Re-ordering inside the top-k only; everything beyond keeps its place.
  `fuse`: each answered item gets `(1 - alpha) * r + alpha * u`, where `r` is the ReID
  similarity min-max normalised within the query's top-k (best 1, worst 0; all 1 when
  they are equal) and `u` the LVLM score on [0, 1] with its threshold at 0.5; ties keep
  the ReID order. `confirm`: items the LVLM calls "same" first, then the other answered
  items, each group in ReID order. In both, an item whose LVLM answer failed keeps its
  ReID position (the answered items are re-ordered among the remaining positions).
- Metrics: `evaluate_retrieval` of a distance matrix whose stable order is the re-ranked
  order: the re-ranked top-k items get distances below every other item of their row,
  increasing along the new list; the rest of the row is unchanged.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Method = Literal["fuse", "confirm"]


def valid_mask(q_pid: int, q_cam: int, g_pids: np.ndarray, g_camids: np.ndarray) -> np.ndarray:
    """Gallery items the Market-1501 protocol keeps for a query (not same pid and camera)."""
    return ~((g_pids == q_pid) & (g_camids == q_cam))


def has_match(
    q_pids: np.ndarray, q_camids: np.ndarray, g_pids: np.ndarray, g_camids: np.ndarray
) -> np.ndarray:
    """Per query: at least one true match survives the junk rule (else metrics skip it)."""
    q_pids, q_camids = np.asarray(q_pids), np.asarray(q_camids)
    g_pids, g_camids = np.asarray(g_pids), np.asarray(g_camids)
    out = np.zeros(q_pids.size, dtype=bool)
    for i in range(q_pids.size):
        out[i] = np.any((g_pids == q_pids[i]) & (g_camids != q_camids[i]))
    return out


def select_queries(eligible: np.ndarray, count: int | str, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subset of eligible queries ("all": every eligible one)."""
    idx = np.flatnonzero(np.asarray(eligible, dtype=bool))
    if count == "all" or int(count) >= idx.size:
        return idx
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(idx, size=int(count), replace=False))


def top_k_lists(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    g_pids: np.ndarray,
    g_camids: np.ndarray,
    k: int,
) -> list[np.ndarray]:
    """Per row: the k nearest valid gallery indices, nearest first (ties by index)."""
    lists = []
    for i in range(distmat.shape[0]):
        keep = valid_mask(q_pids[i], q_camids[i], g_pids, g_camids)
        order = np.argsort(distmat[i], kind="stable")
        lists.append(order[keep[order]][:k])
    return lists


def rerank_list(
    items: np.ndarray,
    reid_sim: np.ndarray,
    lvlm_unit: np.ndarray,
    lvlm_same: np.ndarray,
    *,
    method: Method,
    alpha: float = 0.5,
) -> np.ndarray:
    """Re-order one top-k list (arrays aligned with `items`, in ReID order).

    `lvlm_unit` is NaN where the LVLM gave no answer: such items keep their position.
    """
    items = np.asarray(items)
    unit = np.asarray(lvlm_unit, dtype=np.float64)
    answered = np.isfinite(unit)
    slots = np.flatnonzero(answered)
    if slots.size == 0:
        return items.copy()
    if method == "fuse":
        sim = np.asarray(reid_sim, dtype=np.float64)
        lo, hi = sim.min(), sim.max()
        r = (sim - lo) / (hi - lo) if hi > lo else np.ones_like(sim)
        key = (1.0 - alpha) * r + alpha * unit
        order = slots[np.argsort(-key[slots], kind="stable")]
    elif method == "confirm":
        same = np.asarray(lvlm_same, dtype=bool)
        order = np.concatenate([slots[same[slots]], slots[~same[slots]]])
    else:
        raise ValueError(f"unknown re-ranking method {method!r}")
    out = items.copy()
    out[slots] = items[order]
    return out


def reranked_distmat(distmat: np.ndarray, new_lists: list[np.ndarray]) -> np.ndarray:
    """A float64 copy of `distmat` whose stable row order puts each new list first, in order."""
    d = np.array(distmat, dtype=np.float64, copy=True)
    for i, items in enumerate(new_lists):
        if len(items) == 0:
            continue
        low = float(d[i].min())
        d[i, items] = low - (len(items) - np.arange(len(items), dtype=np.float64))
    return d


def brute_force_metrics(
    ranked: list[np.ndarray],
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    g_pids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int,
) -> dict[str, float | np.ndarray]:
    """CMC / mAP / mINP from explicit full rankings (one gallery order per query).

    The torchreid definitions, written out plainly; a reference for tests and a check
    that a modified distance matrix really encodes the re-ranked lists.
    """
    cmc_sum = np.zeros(max_rank)
    aps, inps = [], []
    for i, order in enumerate(ranked):
        keep = valid_mask(q_pids[i], q_camids[i], g_pids, g_camids)
        order = np.asarray(order)[keep[np.asarray(order)]]
        match = (g_pids[order] == q_pids[i]).astype(np.float64)
        if not match.any():
            continue
        first = int(np.argmax(match))
        cmc = np.zeros(max_rank)
        cmc[first:] = 1.0
        cmc_sum += cmc[:max_rank]
        hits = np.cumsum(match)
        ranks = np.flatnonzero(match) + 1
        aps.append(float(np.mean(hits[ranks - 1] / ranks)))
        inps.append(float(match.sum() / ranks[-1]))
    n = len(aps)
    return {"cmc": cmc_sum / n, "mAP": float(np.mean(aps)), "mINP": float(np.mean(inps)), "n": n}
