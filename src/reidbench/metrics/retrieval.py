"""Retrieval metrics (CMC, mAP, mINP) under the Market-1501 protocol: exact, fast, chunked.

The protocol is torchreid's `eval_market1501` (mINP as in AGW / fast-reid):
for each query, gallery items with the query's pid *and* camera are removed
(junk), a query with no remaining true match is skipped, every other gallery
item (distractors included) is a negative, and ties in distance are broken by
gallery order, exactly as a stable sort would. See docs/retrieval.md.

Why not argsort every row like torchreid: the metrics depend only on the ranks
of the true matches. The rank of a match p is the number of valid items that
sort before it, #{d_j < d_p} + #{d_j == d_p and j < p}, so per row we only
need to count, for a handful of positive distances, how many distances are
smaller. We sort only the items no farther than the farthest positive (few for
a good model), read the counts with a batched binary search, and fix the rare
exact ties with the raw row. No library does this "ranks of a few values in
many rows" job, hence the hand-written code.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

from reidbench.errors import UserError
from reidbench.metrics._util import to_numpy
from reidbench.metrics.rerank import k_reciprocal_distance
from reidbench.progress import Progress, reporting

Metric = Literal["cosine", "euclidean"]

# Rows per full-width work unit: small enough that a unit's temporaries stay
# in the CPU cache.
_UNIT_ELEMENTS = 1 << 19
# Same-pid items handled in one vectorised group (bounds their flat arrays).
_GROUP_ITEMS = 1 << 22
# Elements of the (tied positives x gallery) masks built at once for exact ranks.
_EXACT_ELEMENTS = 1 << 22
# Below this fraction of candidate items, pack and sort only the candidates
# (measured crossover with sorting whole rows: bench/bench_retrieval.py).
_SPARSE_FRACTION = 0.04
# Default distance block for evaluate_features (bytes of float32 distances).
_BLOCK_BYTES = 256 << 20


@dataclass(frozen=True, eq=False)  # arrays inside: == would be ambiguous
class RetrievalResult:
    """CMC/mAP/mINP over the valid queries; attribute or key access (`r.mAP`, `r["mAP"]`).

    `all_AP`, `all_INP` and `first_match_rank` (0-based, among non-junk gallery
    items) are per valid query, aligned with `valid_queries` (indices into the
    query list).
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int
    num_queries: int
    all_AP: np.ndarray
    all_INP: np.ndarray
    first_match_rank: np.ndarray
    valid_queries: np.ndarray

    def rank(self, k: int) -> float:
        """Rank-k accuracy (CMC at k); a gallery shorter than k gives the last CMC value."""
        if k < 1:
            raise ValueError(f"rank must be >= 1, got {k}")
        return float(self.cmc[min(k, len(self.cmc)) - 1])

    def __getitem__(self, key: str) -> Any:
        if key in _FIELD_NAMES:
            return getattr(self, key)
        if key.startswith("rank") and key[4:].isdigit():
            return self.rank(int(key[4:]))
        raise KeyError(key)

    def keys(self) -> list[str]:
        return [*_FIELD_NAMES, "rank1", "rank5", "rank10"]

    def to_dict(self) -> dict[str, Any]:
        """Summary for JSON (rank-1/5/10, mAP, mINP, the CMC curve, query counts)."""
        return {
            "rank1": self.rank(1),
            "rank5": self.rank(5),
            "rank10": self.rank(10),
            "mAP": self.mAP,
            "mINP": self.mINP,
            "cmc": [float(v) for v in self.cmc],
            "num_valid_queries": self.num_valid_queries,
            "num_queries": self.num_queries,
        }


_FIELD_NAMES = tuple(f.name for f in fields(RetrievalResult))


def evaluate_retrieval(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 50,
    *,
    progress: Progress | None = None,
) -> RetrievalResult:
    """Market-1501 CMC/mAP/mINP of a (num_query, num_gallery) distance matrix.

    Identical to torchreid's evaluator with a stable argsort (see module doc),
    without sorting whole rows. `max_rank` larger than the gallery is cut to the
    gallery size with a warning, as torchreid does.
    """
    dist = _as_distmat(distmat)
    num_q, num_g = dist.shape
    ids = _Identities(q_pids, g_pids, q_camids, g_camids, num_q, num_g)
    acc = _Accumulator(num_q, _effective_max_rank(max_rank, num_g))
    with reporting(progress, "retrieval metrics", num_q) as bar:
        for start, stop in _row_blocks(num_q, max(1, _BLOCK_BYTES // (4 * max(num_g, 1)))):
            acc.add(start, _block_stats(dist[start:stop], ids, start))
            bar.advance(stop - start)
    return acc.result()


def evaluate_features(
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
    rerank: bool = False,
    rerank_k1: int = 20,
    rerank_k2: int = 6,
    rerank_lambda: float = 0.3,
    rerank_max_memory_gib: float | None = None,
    progress: Progress | None = None,
) -> RetrievalResult:
    """Features to metrics in query chunks, so memory stays bounded (see docs/retrieval.md).

    Each chunk of `chunk_size` queries gets its distances to the whole gallery
    (cosine: 1 - cos; euclidean: squared, as torchreid), is evaluated and
    dropped. The default chunk holds about 256 MiB of distances. `rerank=True`
    applies k-reciprocal re-ranking first, which needs the full
    (Q+G)^2 matrix: it refuses with a UserError above `rerank_max_memory_gib`.
    """
    q = _as_features(qf, "query features")
    g = _as_features(gf, "gallery features")
    if q.shape[1] != g.shape[1]:
        raise UserError(
            f"query features have {q.shape[1]} dimensions but gallery features have "
            f"{g.shape[1]}: extract both with the same model"
        )
    if rerank:
        dist = k_reciprocal_distance(
            q,
            g,
            k1=rerank_k1,
            k2=rerank_k2,
            lambda_value=rerank_lambda,
            max_memory_gib=rerank_max_memory_gib,
            progress=progress,
        )
        return evaluate_retrieval(dist, q_pids, g_pids, q_camids, g_camids, max_rank)

    plan = plan_query_blocks(
        q,
        g,
        q_pids,
        g_pids,
        q_camids,
        g_camids,
        max_rank=max_rank,
        metric=metric,
        chunk_size=chunk_size,
    )
    acc = plan.accumulator()
    with reporting(progress, "retrieval metrics", plan.num_queries) as bar:
        for start, stop in plan.blocks:
            acc.add(start, plan.block_stats(start, stop))
            bar.advance(stop - start)
    return acc.result()


@dataclass(frozen=True, eq=False)
class QueryBlocks:
    """`evaluate_features` cut into independent query blocks, so an engine can run the
    blocks elsewhere (e.g. as Ray tasks) and combine them with `accumulator()`: the
    same code on the same blocks, hence the same numbers as the local loop."""

    q: np.ndarray
    g_prep: np.ndarray
    g_sq: np.ndarray | None
    metric: str
    ids: _Identities
    max_rank: int
    blocks: list[tuple[int, int]]

    @property
    def num_queries(self) -> int:
        return int(self.q.shape[0])

    def block_stats(self, start: int, stop: int) -> _RowStats:
        """Per-query stats of queries [start, stop) against the whole gallery."""
        block = _distance_block(self.q[start:stop], self.g_prep, self.g_sq, self.metric)
        return _block_stats(block, self.ids, start)

    def accumulator(self) -> _Accumulator:
        """Collects `add(start, block_stats)` in block order; `.result()` at the end."""
        return _Accumulator(self.num_queries, self.max_rank)


def plan_query_blocks(
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
) -> QueryBlocks:
    """Validated inputs and the query blocks `evaluate_features` uses (default ~256 MiB each)."""
    q = _as_features(qf, "query features")
    g = _as_features(gf, "gallery features")
    if q.shape[1] != g.shape[1]:
        raise UserError(
            f"query features have {q.shape[1]} dimensions but gallery features have "
            f"{g.shape[1]}: extract both with the same model"
        )
    num_q, num_g = q.shape[0], g.shape[0]
    ids = _Identities(q_pids, g_pids, q_camids, g_camids, num_q, num_g)
    effective = _effective_max_rank(max_rank, num_g)
    if chunk_size is None:
        chunk_size = max(1, _BLOCK_BYTES // (4 * max(num_g, 1)))
    if chunk_size < 1:
        raise UserError(f"chunk_size must be a positive number of queries, got {chunk_size}")
    g_prep, g_sq = _prepare_gallery(g, metric)
    return QueryBlocks(
        q=q,
        g_prep=g_prep,
        g_sq=g_sq,
        metric=metric,
        ids=ids,
        max_rank=effective,
        blocks=list(_row_blocks(num_q, chunk_size)),
    )


def pairwise_distance(qf: Any, gf: Any, metric: Metric = "cosine") -> np.ndarray:
    """(Q, G) float32 distances, computed as evaluate_features computes them.

    cosine: 1 - <q, g> of L2-normalised rows; euclidean: squared Euclidean
    distance |q|^2 + |g|^2 - 2<q, g> (torchreid's `euclidean_squared_distance`).
    """
    q = _as_features(qf, "query features")
    g = _as_features(gf, "gallery features")
    g_prep, g_sq = _prepare_gallery(g, metric)
    return _distance_block(q, g_prep, g_sq, metric)


# --------------------------------------------------------------------------- inputs


def _as_distmat(distmat: Any) -> np.ndarray:
    dist = to_numpy(distmat)
    if dist.ndim != 2:
        raise UserError(f"distance matrix must be 2-D (queries x gallery), got shape {dist.shape}")
    if dist.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(dist.dtype, np.number) or dist.dtype == np.bool_):
            raise UserError(f"distance matrix must be numeric, got dtype {dist.dtype}")
        if np.issubdtype(dist.dtype, np.complexfloating):
            raise UserError(f"distance matrix must be real, got dtype {dist.dtype}")
        # Exact conversions, so the order is unchanged: float16/int8/int16/bool fit
        # float32; float64 holds every int32 (and int64 below 2**53).
        small = dist.dtype.itemsize <= 2 and dist.dtype.kind in "fiub"
        dist = dist.astype(np.float32 if small else np.float64)
    if 0 in dist.shape:
        raise UserError(f"distance matrix is empty (shape {dist.shape}): no queries or no gallery")
    return dist


def _as_features(x: Any, what: str) -> np.ndarray:
    arr = to_numpy(x)
    if arr.ndim != 2 or 0 in arr.shape:
        raise UserError(f"{what} must be a non-empty (N, D) array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise UserError(f"{what} must be numeric, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _as_labels(x: Any, n: int, what: str) -> np.ndarray:
    arr = to_numpy(x)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise UserError(
            f"{what} must be a 1-D array with one entry per row/column of the distance "
            f"matrix ({n}), got shape {arr.shape}"
        )
    return arr


def _effective_max_rank(max_rank: int, num_g: int) -> int:
    if int(max_rank) != max_rank or max_rank < 1:
        raise UserError(f"max_rank must be a positive integer, got {max_rank!r}")
    if num_g < max_rank:
        # torchreid prints this note and evaluates up to the gallery size.
        warnings.warn(
            f"number of gallery samples is quite small ({num_g}): CMC is computed up to "
            f"rank {num_g} instead of {max_rank}",
            stacklevel=3,
        )
        return num_g
    return int(max_rank)


def _row_blocks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(n, start + size)


# --------------------------------------------------------------------------- distances


def _prepare_gallery(g: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray | None]:
    if metric == "cosine":
        return _l2_normalise(g), None
    if metric == "euclidean":
        return g, np.einsum("ij,ij->i", g, g)
    raise UserError(f"unknown distance metric {metric!r}: use 'cosine' or 'euclidean'")


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # As torch.nn.functional.normalize: a zero row stays zero instead of NaN.
    return x / np.maximum(norms, np.float32(1e-12))


def _distance_block(
    q: np.ndarray, g_prep: np.ndarray, g_sq: np.ndarray | None, metric: str
) -> np.ndarray:
    if metric == "cosine":
        block = _l2_normalise(q) @ g_prep.T
        np.subtract(np.float32(1.0), block, out=block)
        return block
    assert g_sq is not None  # _prepare_gallery gives squared norms for euclidean
    block = q @ g_prep.T
    block *= np.float32(-2.0)
    block += np.einsum("ij,ij->i", q, q)[:, None]
    block += g_sq[None, :]
    return block


# --------------------------------------------------------------------------- identities


class _Identities:
    """Per query: the gallery items sharing its pid (ascending index), and which are junk."""

    def __init__(
        self, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any, num_q: int, num_g: int
    ) -> None:
        self.q_pids = _as_labels(q_pids, num_q, "q_pids")
        g_pids = _as_labels(g_pids, num_g, "g_pids")
        self.q_camids = _as_labels(q_camids, num_q, "q_camids")
        self.g_camids = _as_labels(g_camids, num_g, "g_camids")
        order = np.argsort(g_pids, kind="stable")
        uniq, starts, counts = np.unique(g_pids[order], return_index=True, return_counts=True)
        slot = np.minimum(np.searchsorted(uniq, self.q_pids), len(uniq) - 1)
        found = uniq[slot] == self.q_pids
        self.g_order = order
        self.q_start = np.where(found, starts[slot], 0)
        self.q_count = np.where(found, counts[slot], 0)

    def same_pid_flat(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat (row - start, gallery index, is junk) of every same-pid pair, by row then index."""
        count = self.q_count[start:stop]
        row = np.repeat(np.arange(stop - start), count)
        offset = np.cumsum(count) - count
        slot = np.arange(len(row)) + np.repeat(self.q_start[start:stop] - offset, count)
        gidx = self.g_order[slot]
        junk = self.g_camids[gidx] == self.q_camids[start + row]
        return row, gidx, junk


# --------------------------------------------------------------------------- core


@dataclass
class _RowStats:
    num_pos: np.ndarray  # (c,) true matches per query after junk removal
    first: np.ndarray  # (c,) 0-based rank of the first true match
    ap: np.ndarray  # (c,)
    inp: np.ndarray  # (c,)


def _block_stats(dist: np.ndarray, ids: _Identities, row0: int) -> _RowStats:
    """Per-row stats of a distance block, in groups whose same-pid items fit a budget."""
    parts = [
        _group_stats(dist[a - row0 : b - row0], ids, a)
        for a, b in _set_groups(ids.q_count, row0, row0 + dist.shape[0])
    ]
    return _RowStats(
        *(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(_RowStats))
    )


def _set_groups(count: np.ndarray, start: int, stop: int) -> Iterator[tuple[int, int]]:
    # Bounds the flat same-pid arrays even when one pid owns most of the gallery.
    a = start
    while a < stop:
        total = np.cumsum(count[a:stop])
        b = a + max(1, int(np.searchsorted(total, _GROUP_ITEMS, side="right")))
        yield a, b
        a = b


def _workers() -> int:
    """Threads for row units: REIDBENCH_NUM_THREADS, else the CPU count (at most 8).

    numpy's comparisons, masking and sorting release the GIL, so units run in parallel.
    """
    env = os.environ.get("REIDBENCH_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(8, os.cpu_count() or 1))


def _group_stats(dist: np.ndarray, ids: _Identities, row0: int) -> _RowStats:
    """Stats for consecutive rows; same-pid items live in flat arrays sorted by row."""
    c, num_g = dist.shape
    row, gidx, junk = ids.same_pid_flat(row0, row0 + c)
    d = dist[row, gidx]
    # Sort each row's same-pid items by (distance, gallery index), NaN last, with
    # stable integer sorts (np.lexsort on floats is several times slower).
    if d.dtype == np.float32:
        order = np.argsort(_row_keys(row, d), kind="stable")
    else:
        by_d = np.argsort(_order_keys(d), kind="stable")
        order = by_d[np.argsort(row[by_d], kind="stable")]
    row, gidx, junk, d = row[order], gidx[order], junk[order], d[order]
    n = len(row)
    row_start = np.searchsorted(row, np.arange(c + 1))
    flat = np.arange(n)
    # Runs of equal distances inside a row's set: set items strictly closer
    # than an item = its run start; set items tied with it = its run length.
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (d[1:] != d[:-1]) | (row[1:] != row[:-1])
    run_first = np.maximum.accumulate(np.where(new_run, flat, 0)) if n else flat
    end_run = np.ones(n, dtype=bool)
    end_run[:-1] = new_run[1:]
    run_last = np.minimum.accumulate(np.where(end_run, flat, n)[::-1])[::-1] if n else flat
    set_closer = run_first - row_start[row]
    run_len = run_last - run_first + 1

    pos = ~junk
    prow, pgidx, pd = row[pos], gidx[pos], d[pos]
    pcloser, prun = set_closer[pos], run_len[pos]
    num_pos = np.bincount(prow, minlength=c)
    pstart = np.zeros(c + 1, dtype=np.int64)
    np.cumsum(num_pos, out=pstart[1:])
    pos_before = np.cumsum(pos)[pos] - 1 - (np.cumsum(pos) - pos)[row_start[prow]]

    nan = np.isnan(pd)
    farthest = np.full(c, -np.inf, dtype=dist.dtype)
    np.maximum.at(farthest, prow[~nan], pd[~nan])
    below = np.empty(len(pd), dtype=np.int64)
    outside_tie = np.empty(len(pd), dtype=bool)
    units = list(_row_blocks(c, max(1, _UNIT_ELEMENTS // max(num_g, 1))))

    def unit(ab: tuple[int, int]) -> None:
        a, b = ab
        seg = slice(pstart[a], pstart[b])
        xstart = pstart[a : b + 1] - pstart[a]
        below[seg], outside_tie[seg] = _count_below(
            dist[a:b], farthest[a:b], prow[seg] - a, pd[seg], prun[seg], xstart
        )

    if len(units) > 1 and _workers() > 1:
        with ThreadPoolExecutor(_workers()) as pool:
            list(pool.map(unit, units))
    else:
        for ab in units:
            unit(ab)

    rank = below - pcloser + pos_before
    slow = np.flatnonzero(nan | outside_tie)
    if slow.size:
        _exact_ranks(dist, row, gidx, d, junk, prow[slow], pgidx[slow], pd[slow], rank, slow)

    has = num_pos > 0
    first = np.full(c, np.iinfo(np.int64).max)
    first[has] = rank[pstart[:-1][has]]  # ranks grow along each row's sorted positives
    last = np.full(c, -1)
    last[has] = rank[pstart[1:][has] - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ap = np.bincount(prow, weights=(pos_before + 1) / (rank + 1.0), minlength=c) / num_pos
        inp = num_pos / (last + 1.0)
    return _RowStats(num_pos=num_pos, first=first, ap=ap, inp=inp)


def _count_below(
    dist: np.ndarray,
    limit: np.ndarray,
    xrow: np.ndarray,
    x: np.ndarray,
    run_len: np.ndarray,
    xstart: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For values x (in row xrow, <= limit of that row): #{j : dist[row, j] < x}, and
    whether more than run_len items of the row equal x (an outside tie)."""
    c = dist.shape[0]
    mask = dist <= limit[:, None]  # NaN never
    total = np.count_nonzero(mask)
    sparse = total <= _SPARSE_FRACTION * mask.size
    if sparse:
        # Positions give the rows for free (a per-row count would cost a call per row).
        flat = np.flatnonzero(mask)
        rows = flat // dist.shape[1]
        values = dist.reshape(-1)[flat]
        counts = np.bincount(rows, minlength=c)
        starts = np.cumsum(counts) - counts
    if sparse and dist.dtype == np.float32:
        # Few candidates: one flat sort of (row, distance) keys for all rows.
        keys = _row_keys(rows, values)
        keys.sort()
        probe_keys = _row_keys(xrow, x)
        below = np.searchsorted(keys, probe_keys) - starts[xrow]
        probe = below + run_len
        outside_tie = probe < counts[xrow]
        if len(keys):
            outside_tie &= keys[np.minimum(starts[xrow] + probe, len(keys) - 1)] == probe_keys
        return below, outside_tie
    if sparse:
        cand = np.full((c, max(int(counts.max(initial=0)), 1)), np.inf, dtype=dist.dtype)
        cand[np.arange(cand.shape[1]) < counts[:, None]] = values
    else:
        # Many candidates: sort the raw rows. Items beyond the limit never change
        # a count below it, and masking them to +inf makes numpy's sort no faster.
        cand = dist.copy()
    cand.sort(axis=1)
    below = np.empty(len(x), dtype=np.int64)
    for r in range(c):
        seg = slice(xstart[r], xstart[r + 1])
        below[seg] = cand[r].searchsorted(x[seg])
    probe = below + run_len
    width = cand.shape[1]
    outside_tie = probe < width
    outside_tie &= cand[xrow, np.minimum(probe, width - 1)] == x
    return below, outside_tie


def _order_keys(values: np.ndarray) -> np.ndarray:
    """Unsigned integers in the order numpy sorts the floats: -0.0 == 0.0, NaN last."""
    uint = np.uint32 if values.dtype == np.float32 else np.uint64
    sign = uint(8 * np.dtype(uint).itemsize - 1)
    # + 0.0 turns -0.0 into +0.0; every NaN becomes the positive quiet NaN.
    clean = np.where(np.isnan(values), values.dtype.type(np.nan), values + values.dtype.type(0))
    bits = clean.view(uint)
    # Flip so unsigned order is float order: negatives reversed, below positives.
    return bits ^ ((uint(0) - (bits >> sign)) | (uint(1) << sign))


def _row_keys(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """int64 keys ordered like (row, value), for float32 values."""
    return (rows.astype(np.int64) << 32) | _order_keys(values).astype(np.int64)


def _exact_ranks(
    dist: np.ndarray,
    row: np.ndarray,
    gidx: np.ndarray,
    d: np.ndarray,
    junk: np.ndarray,
    xrow: np.ndarray,
    xidx: np.ndarray,
    x: np.ndarray,
    rank: np.ndarray,
    where: np.ndarray,
) -> None:
    """Ranks of flagged positives straight from the raw rows (outside ties, NaN)."""
    cols = np.arange(dist.shape[1])
    step = max(1, _EXACT_ELEMENTS // dist.shape[1])  # bounds the (positives x gallery) masks
    for r in np.unique(xrow):
        jr = (row == r) & junk
        sel_all = np.flatnonzero(xrow == r)
        for start in range(0, len(sel_all), step):
            sel = sel_all[start : start + step]
            xs, ps = x[sel][:, None], xidx[sel][:, None]
            before = _sorts_before(dist[r][None, :], cols[None, :], xs, ps)
            junk_before = _sorts_before(d[jr][None, :], gidx[jr][None, :], xs, ps)
            count = np.count_nonzero(before, axis=1) - np.count_nonzero(junk_before, axis=1)
            rank[where[sel]] = count


def _sorts_before(d: np.ndarray, idx: np.ndarray, x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Whether (d, idx) precedes (x, p) in a stable ascending sort (NaN last)."""
    d_nan = np.isnan(d)
    x_nan = np.isnan(x)
    strictly = np.where(x_nan, ~d_nan, d < x)
    tied = np.where(x_nan, d_nan, d == x) & (idx < p)
    return strictly | tied


class _Accumulator:
    def __init__(self, num_q: int, max_rank: int) -> None:
        self.num_q = num_q
        self.max_rank = max_rank
        self.valid: list[np.ndarray] = []
        self.first: list[np.ndarray] = []
        self.ap: list[np.ndarray] = []
        self.inp: list[np.ndarray] = []

    def add(self, row0: int, stats: _RowStats) -> None:
        ok = stats.num_pos > 0
        self.valid.append(row0 + np.flatnonzero(ok))
        self.first.append(stats.first[ok])
        self.ap.append(stats.ap[ok])
        self.inp.append(stats.inp[ok])

    def result(self) -> RetrievalResult:
        valid = np.concatenate(self.valid)
        if valid.size == 0:
            raise UserError(
                "no query has a true match in the gallery (same pid, different camera): "
                "check that query and gallery come from the same split and that pids match"
            )
        first = np.concatenate(self.first)
        hits = np.bincount(first[first < self.max_rank], minlength=self.max_rank)
        cmc = np.cumsum(hits) / valid.size
        ap = np.concatenate(self.ap)
        inp = np.concatenate(self.inp)
        return RetrievalResult(
            cmc=cmc,
            mAP=float(ap.mean()),
            mINP=float(inp.mean()),
            num_valid_queries=int(valid.size),
            num_queries=self.num_q,
            all_AP=ap,
            all_INP=inp,
            first_match_rank=first,
            valid_queries=valid,
        )
