"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), same numbers, far less memory.

The reference implementation (Zhong's `re_ranking`, copied by torchreid,
fast-reid and AGW) keeps five dense (Q+G)^2 arrays alive: the distances, their
int64 argsort, the encoding V, its query-expanded copy and the Jaccard matrix.
V is sparse (each row holds a few dozen k-reciprocal neighbours) and only the
first k1+1 columns of the argsort are ever read, so here the one dense
(Q+G)^2 array is the distance matrix itself (float32, transformed in place);
V is kept row-sparse and the Jaccard distance is computed for the query rows
only. Every float operation is the reference's, in the reference's order, so
the result is bit-for-bit the reference's (tests compare them).

One deliberate difference: neighbours tied in distance are ordered by index
(a stable sort); the reference's `np.argsort` leaves their order unspecified.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.errors import UserError
from reidbench.metrics._util import to_numpy
from reidbench.progress import Progress, reporting

DEFAULT_MAX_MEMORY_GIB = 8.0
_GIB = 1 << 30


def rerank_memory_bytes(num_query: int, num_gallery: int, k1: int = 20, k2: int = 6) -> int:
    """Estimated peak memory of k_reciprocal_distance, beyond the features.

    4 N^2 (the float32 N x N distances, N = Q + G) + 4 Q G (the result)
    + 128 MiB of block buffers + the sparse encodings, at 12 bytes per stored
    neighbour with (k1+1)^2 / 4 neighbours per row, times (1 + k2) for the
    query-expanded copy (a generous average: rows hold a few dozen).
    """
    n = num_query + num_gallery
    sparse = 12 * n * ((k1 + 1) ** 2 // 4) * (1 + max(k2, 1))
    return 4 * n * n + 4 * num_query * num_gallery + (128 << 20) + sparse


def k_reciprocal_distance(
    qf: Any,
    gf: Any,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    max_memory_gib: float | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Re-ranked (Q, G) distances from features, as fast-reid/AGW's feature version.

    The original distance is the squared Euclidean distance between the rows
    (for L2-normalised features: 2 - 2 cos), computed as they compute it.
    Refuses with a UserError when the memory estimate (rerank_memory_bytes)
    exceeds `max_memory_gib` (default 8 GiB).
    """
    q = _features(qf, "query features")
    g = _features(gf, "gallery features")
    if q.shape[1] != g.shape[1]:
        raise UserError(
            f"query features have {q.shape[1]} dimensions but gallery features have "
            f"{g.shape[1]}: extract both with the same model"
        )
    _check_params(k1, k2, lambda_value)
    _check_memory(q.shape[0], g.shape[0], k1, k2, max_memory_gib)
    import torch  # heavy import, only needed here

    feat = torch.from_numpy(np.concatenate([q, g]))
    n = feat.shape[0]
    # fast-reid's expression, so the starting distances are theirs to the last bit.
    sq = torch.pow(feat, 2).sum(dim=1, keepdim=True)
    dist = sq.expand(n, n) + sq.expand(n, n).t()
    dist.addmm_(feat, feat.t(), beta=1, alpha=-2)
    del feat, sq
    return _k_reciprocal(dist.numpy(), q.shape[0], k1, k2, lambda_value, progress)


def re_ranking(
    q_g_dist: Any,
    q_q_dist: Any,
    g_g_dist: Any,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    max_memory_gib: float | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """torchreid's `re_ranking(q_g_dist, q_q_dist, g_g_dist, ...)`, same numbers.

    As the reference, the given distances are squared first (pass Euclidean,
    not squared Euclidean, distances to match the paper).
    """
    qg = _matrix(q_g_dist, "q_g_dist")
    qq = _matrix(q_q_dist, "q_q_dist")
    gg = _matrix(g_g_dist, "g_g_dist")
    num_q, num_g = qg.shape
    if qq.shape != (num_q, num_q) or gg.shape != (num_g, num_g):
        raise UserError(
            f"distance shapes do not fit: q_g {qg.shape}, q_q {qq.shape}, g_g {gg.shape}; "
            f"expected q_q ({num_q}, {num_q}) and g_g ({num_g}, {num_g})"
        )
    _check_params(k1, k2, lambda_value)
    _check_memory(num_q, num_g, k1, k2, max_memory_gib)
    dist = np.empty((num_q + num_g, num_q + num_g), dtype=np.result_type(qg, qq, gg))
    dist[:num_q, :num_q] = qq
    dist[:num_q, num_q:] = qg
    dist[num_q:, :num_q] = qg.T
    dist[num_q:, num_q:] = gg
    if dist.dtype == np.float32:
        np.power(dist, 2, out=dist)
    else:
        dist = np.power(dist, 2).astype(np.float32)
    return _k_reciprocal(dist, num_q, k1, k2, lambda_value, progress)


# --------------------------------------------------------------------------- checks


def _features(x: Any, what: str) -> np.ndarray:
    arr = to_numpy(x)
    if arr.ndim != 2 or 0 in arr.shape or not np.issubdtype(arr.dtype, np.number):
        raise UserError(f"{what} must be a non-empty numeric (N, D) array, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise UserError(f"{what} contain NaN or infinite values: re-extract the features")
    return arr


def _matrix(x: Any, what: str) -> np.ndarray:
    arr = to_numpy(x)
    if arr.ndim != 2 or 0 in arr.shape or not np.issubdtype(arr.dtype, np.floating):
        raise UserError(f"{what} must be a non-empty 2-D float array, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise UserError(f"{what} contains NaN distances: re-compute the distances")
    return arr


def _check_params(k1: int, k2: int, lambda_value: float) -> None:
    if k1 < 1 or k2 < 1:
        raise UserError(f"re-ranking needs k1 >= 1 and k2 >= 1, got k1={k1}, k2={k2}")
    if not 0.0 <= lambda_value <= 1.0:
        raise UserError(f"re-ranking lambda must be in [0, 1], got {lambda_value}")


def _check_memory(num_q: int, num_g: int, k1: int, k2: int, max_memory_gib: float | None) -> None:
    limit = DEFAULT_MAX_MEMORY_GIB if max_memory_gib is None else float(max_memory_gib)
    need = rerank_memory_bytes(num_q, num_g, k1, k2)
    if need > limit * _GIB:
        raise UserError(
            f"k-reciprocal re-ranking of {num_q} queries x {num_g} gallery images needs about "
            f"{need / _GIB:.1f} GiB (it holds a (Q+G)^2 float32 matrix), above the "
            f"{limit:g} GiB limit: raise the limit if the machine has the memory, "
            "or evaluate without re-ranking"
        )


# --------------------------------------------------------------------------- core


def _k_reciprocal(
    dist: np.ndarray,
    num_q: int,
    k1: int,
    k2: int,
    lambda_value: float,
    progress: Progress | None,
) -> np.ndarray:
    """The reference algorithm on the raw (N, N) float32 distances; `dist` is overwritten."""
    n = dist.shape[0]
    k_half = int(np.around(k1 / 2.0))
    width = min(n, max(k1 + 1, k_half + 1, k2))
    with reporting(progress, "re-ranking", 4) as bar:
        # Reference: original_dist = transpose(1. * d / max(d, axis=0)).
        col_max = np.max(dist, axis=0)
        np.true_divide(dist, col_max[None, :], out=dist)
        _transpose_in_place(dist)
        original = dist
        top = _top_neighbours(original, width)
        bar.advance()
        expansion = _expansions(top, k1, k_half)
        v_ptr, v_idx, v_val = _encode(original, expansion)
        bar.advance()
        if k2 != 1:
            v_ptr, v_idx, v_val = _query_expand(v_ptr, v_idx, v_val, top[:, :k2], n)
        bar.advance()
        final = _jaccard_query_rows(v_ptr, v_idx, v_val, num_q, n)
        # Reference: jaccard * (1 - lambda) + original * lambda, row blocks in place.
        np.multiply(final, 1 - lambda_value, out=final)
        for start in range(0, num_q, 1024):
            rows = slice(start, min(num_q, start + 1024))
            final[rows] += original[rows, num_q:] * lambda_value
        bar.advance()
    return final


def _transpose_in_place(a: np.ndarray, block: int = 1024) -> None:
    n = a.shape[0]
    for i in range(0, n, block):
        ii = slice(i, min(n, i + block))
        a[ii, ii] = a[ii, ii].T.copy()
        for j in range(i + block, n, block):
            jj = slice(j, min(n, j + block))
            upper = a[ii, jj].copy()
            a[ii, jj] = a[jj, ii].T
            a[jj, ii] = upper.T


def _top_neighbours(dist: np.ndarray, width: int) -> np.ndarray:
    """First `width` columns of a stable argsort of each row, without sorting rows."""
    n = dist.shape[0]
    top = np.empty((n, width), dtype=np.int64)
    block = max(1, (64 << 20) // (8 * n))
    for start in range(0, n, block):
        rows = dist[start : start + block]
        if width >= n:
            top[start : start + len(rows)] = np.argsort(rows, axis=1, kind="stable")[:, :width]
            continue
        part = np.argpartition(rows, width - 1, axis=1)[:, :width]
        kth = np.max(np.take_along_axis(rows, part, axis=1), axis=1)
        crowded = np.count_nonzero(rows <= kth[:, None], axis=1) > width
        # Without ties at the k-th value the partition holds exactly the k
        # nearest; order them by (distance, index) as a stable sort would.
        part.sort(axis=1)
        order = np.argsort(np.take_along_axis(rows, part, axis=1), axis=1, kind="stable")
        chosen = np.take_along_axis(part, order, axis=1)
        for r in np.flatnonzero(crowded):
            near = np.flatnonzero(rows[r] <= kth[r])
            chosen[r] = near[np.argsort(rows[r, near], kind="stable")[:width]]
        top[start : start + len(rows)] = chosen
    return top


def _reciprocal(top: np.ndarray, k: int) -> np.ndarray:
    """mask[i, a]: top[i, a] is among i's k+1 nearest and i is among its k+1 nearest."""
    n = top.shape[0]
    fwd = top[:, : k + 1]
    mask = np.empty(fwd.shape, dtype=bool)
    block = max(1, (32 << 20) // (8 * fwd.shape[1] ** 2))
    for start in range(0, n, block):
        rows = np.arange(start, min(n, start + block))
        mask[rows] = (top[fwd[rows], : k + 1] == rows[:, None, None]).any(axis=2)
    return mask


def _expansions(top: np.ndarray, k1: int, k_half: int) -> list[np.ndarray]:
    """Per row, the sorted k-reciprocal expansion set of the reference."""
    n = top.shape[0]
    rec = _reciprocal(top, k1)
    rec_half = _reciprocal(top, k_half)
    fwd = top[:, : k1 + 1]
    fwd_half = top[:, : k_half + 1]
    pad = n  # never a real index
    half_sets = np.where(rec_half, fwd_half, pad)
    half_size = rec_half.sum(axis=1)
    out: list[np.ndarray] = []
    block = max(1, (32 << 20) // (fwd.shape[1] ** 2 * fwd_half.shape[1]))
    for start in range(0, n, block):
        stop = min(n, start + block)
        r_sets = np.where(rec[start:stop], fwd[start:stop], -1)  # (b, K1)
        cand = fwd[start:stop]  # (b, K1): candidate c = top[i, a]
        c_sets = half_sets[cand]  # (b, K1, Kh)
        inter = (c_sets[..., None] == r_sets[:, None, None, :]).any(axis=3).sum(axis=2)
        # Reference: len(intersect1d(cand_set, R)) > 2. / 3 * len(cand_set).
        accept = rec[start:stop] & (inter > 2.0 / 3 * half_size[cand])
        for b in range(stop - start):
            parts = [r_sets[b][r_sets[b] >= 0], c_sets[b][accept[b]].ravel()]
            members = np.concatenate(parts)
            out.append(np.unique(members[members != pad]))
    return out


def _encode(
    original: np.ndarray, expansion: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of V: V[i, e] = exp(-d[i, e]) / sum, over the expansion set e of row i."""
    n = original.shape[0]
    ptr = np.zeros(n + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(e) for e in expansion])
    idx = np.concatenate(expansion) if n else np.zeros(0, np.int64)
    val = np.empty(len(idx), dtype=np.float32)
    for i, e in enumerate(expansion):
        weight = np.exp(-original[i, e])
        val[ptr[i] : ptr[i + 1]] = 1.0 * weight / np.sum(weight)
    return ptr, idx.astype(np.int64), val


def _query_expand(
    ptr: np.ndarray, idx: np.ndarray, val: np.ndarray, neighbours: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """V_qe[i] = mean of V over i's k2 nearest rows, with the reference's float32 sums."""
    k2 = neighbours.shape[1]
    rows_idx: list[np.ndarray] = []
    rows_val: list[np.ndarray] = []
    for i in range(n):
        segs = [slice(ptr[r], ptr[r + 1]) for r in neighbours[i]]
        cols = np.concatenate([idx[s] for s in segs])
        vals = np.concatenate([val[s] for s in segs])
        uniq, inv = np.unique(cols, return_inverse=True)
        acc = np.zeros(len(uniq), dtype=np.float32)
        # Sequential float32 adds in neighbour order, as np.mean(axis=0) does;
        # the reference's zeros add nothing.
        np.add.at(acc, inv, vals)
        np.true_divide(acc, np.intp(k2), out=acc, casting="unsafe")
        keep = acc != 0
        rows_idx.append(uniq[keep])
        rows_val.append(acc[keep])
    new_ptr = np.zeros(n + 1, dtype=np.int64)
    new_ptr[1:] = np.cumsum([len(c) for c in rows_idx])
    return new_ptr, np.concatenate(rows_idx), np.concatenate(rows_val)


def _jaccard_query_rows(
    ptr: np.ndarray, idx: np.ndarray, val: np.ndarray, num_q: int, n: int
) -> np.ndarray:
    """1 - sum(min)/(2 - sum(min)) for query rows against gallery columns (reference order)."""
    # Column view of V (rows ascending inside a column), the reference's invIndex.
    row_of = np.repeat(np.arange(n), np.diff(ptr))
    by_col = np.argsort(idx, kind="stable")
    col_rows = row_of[by_col]
    col_vals = val[by_col]
    col_ptr = np.zeros(n + 1, dtype=np.int64)
    col_ptr[1:] = np.cumsum(np.bincount(idx, minlength=n))
    out = np.empty((num_q, n - num_q), dtype=np.float32)
    for i in range(num_q):
        temp_min = np.zeros(n, dtype=np.float32)
        for k, v_ik in zip(idx[ptr[i] : ptr[i + 1]], val[ptr[i] : ptr[i + 1]], strict=True):
            s = slice(col_ptr[k], col_ptr[k + 1])
            rows = col_rows[s]
            temp_min[rows] = temp_min[rows] + np.minimum(v_ik, col_vals[s])
        out[i] = (1 - temp_min / (2.0 - temp_min))[num_q:]
    return out
