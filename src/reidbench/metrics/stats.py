"""Uncertainty: seeded bootstrap confidence intervals, McNemar, paired bootstrap of AUC.

The bootstrap resamples pairs with replacement. Scores are put once into tie
groups (distinct values, highest first); a resample then reduces to how many
same- and different-person pairs it drew from each group (one `bincount` over
its draws), and every ranking metric of every resample comes out of cumulative
sums over those group counts, instead of B calls to scikit-learn. The formulas
are the exact ones scikit-learn uses (ROC trapezoid for AUC, step-wise average
precision) and the same EER/TAR rules as `verification`; the tests check them
against scikit-learn on every resample. scikit-learn has no resampling API, and
scipy's `bootstrap` calls the statistic once per resample (far too slow for
1,000 resamples x 5 systems), hence this module.

Intervals are percentile intervals (2.5th and 97.5th percentile for 95%) over
the resamples where the metric is defined; each interval records how many
resamples that was (`n_valid`).

With ``clusters=`` (see `clusters.pair_clusters`) pairs are not independent:
pairs that share a person share its random effect. Then the resamples draw
*people* (clusters) with replacement, and a pair's weight is the product of
its clusters' draw counts (Owen's pigeonhole bootstrap, for the two-way
crossed structure of different-person pairs); a second bootstrap draws dyads
(unordered pairs of people). The variance is combined as in Cameron, Gelbach
& Miller (2011): V = V_clusters - 2 V_dyads, which for a linear statistic is
exactly the two-way cluster-robust variance sum_c S_c^2 - sum_d S_d^2 (the
pigeonhole bootstrap alone counts the pair-level noise three times: too
wide). The interval is the normal one, estimate +- z * sqrt(V), clipped to
[0, 1]; docs/metrics.md ("Statistics") has the derivation and references,
and bench/bench_intervals.py the coverage it achieves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy.stats import binomtest, norm
from sklearn.metrics import roc_auc_score

from reidbench.metrics._util import fnum
from reidbench.metrics.clusters import PairClusters, as_pair_clusters
from reidbench.metrics.verification import FAR, RANKING_METRICS, TAR_KEY, THRESHOLD_METRICS

__all__ = [
    "PERCENTILE_METRICS",
    "bootstrap_ci",
    "bootstrap_distribution",
    "bootstrap_indices",
    "cluster_bootstrap_indices",
    "cluster_weight_chunks",
    "grouped_mean_ci",
    "interval_from_weights",
    "iter_bootstrap_indices",
    "mcnemar",
    "metrics_from_weights",
    "paired_bootstrap_auc",
    "paired_difference_test",
    "paired_from_weights",
    "percentile_ci",
    "ranking_from_weights",
    "resample_weights",
    "two_way_variance",
]

_RANKING_KEYS = RANKING_METRICS  # the order matters: [:1] is the AUC
PERCENTILE_METRICS = (TAR_KEY,)
_CLUSTER_METHOD = (
    "two-way cluster bootstrap over identities (pigeonhole weights, Owen 2007) with the "
    "Cameron-Gelbach-Miller variance V_clusters - 2 V_dyads; normal interval "
    "(TAR@FAR: percentile of the pigeonhole draws)"
)
_CHUNK_ELEMENTS = 1 << 21  # index draws per chunk: bounds memory at ~50 MB whatever n and B


def _chunk_rows(n: int, n_resamples: int) -> int:
    return max(1, min(n_resamples, _CHUNK_ELEMENTS // max(n, 1)))


def iter_bootstrap_indices(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Resample index draws as (chunk, n) arrays; determined by (n, n_resamples, seed) alone."""
    rng = np.random.default_rng(seed)
    rows = _chunk_rows(n, n_resamples)
    done = 0
    while done < n_resamples:
        take = min(rows, n_resamples - done)
        yield rng.integers(0, n, size=(take, n), dtype=np.int64)
        done += take


def bootstrap_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """All resample draws as one (n_resamples, n) array (for tests and small inputs)."""
    if n_resamples == 0:
        return np.zeros((0, n), dtype=np.int64)
    return np.concatenate(list(iter_bootstrap_indices(n, n_resamples, seed)))


def resample_weights(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each of the n pairs was drawn in each resample: (B, n) float64 counts."""
    b = idx.shape[0]
    flat = (idx + (np.arange(b, dtype=np.int64) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def _score_groups(s: np.ndarray) -> tuple[np.ndarray, int]:
    """Tie-group id of each score, 0 for the highest distinct value; and the number of groups."""
    if s.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    order = np.argsort(-s, kind="stable")
    s_o = s[order]
    gid = np.empty(s.size, dtype=np.int64)
    gid[order] = np.cumsum(np.r_[True, s_o[1:] != s_o[:-1]]) - 1
    return gid, int(gid.max()) + 1


def _ranking_from_counts(
    pos: np.ndarray, neg: np.ndarray, far: float, only_auc: bool
) -> dict[str, np.ndarray]:
    """Ranking metrics per row from (B, G) same/different counts per tie group, highest first."""
    b = pos.shape[0]
    tp = np.cumsum(pos, axis=1, dtype=np.float64)
    fp = np.cumsum(neg, axis=1, dtype=np.float64)
    n_pos, n_neg = tp[:, -1:], fp[:, -1:]
    valid = (n_pos[:, 0] > 0) & (n_neg[:, 0] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = tp / n_pos
        fpr = fp / n_neg
        tpr_prev = np.zeros_like(tpr)
        tpr_prev[:, 1:] = tpr[:, :-1]
        fpr_prev = np.zeros_like(fpr)
        fpr_prev[:, 1:] = fpr[:, :-1]
        out = {"auc": np.sum((fpr - fpr_prev) * (tpr + tpr_prev), axis=1) / 2.0}
        if not only_auc:
            called = tp + fp
            precision = np.divide(tp, called, out=np.zeros_like(tp), where=called > 0)
            out["pr_auc"] = np.sum((tpr - tpr_prev) * precision, axis=1)
            # EER: FPR - FNR rises from -1 (the origin) to +1; interpolate across zero.
            d = fpr - (1.0 - tpr)
            i = np.argmax(d >= 0, axis=1)
            rows = np.arange(b)
            d1, f1 = d[rows, i], fpr[rows, i]
            d0 = np.where(i > 0, d[rows, i - 1], -1.0)
            f0 = np.where(i > 0, fpr[rows, i - 1], 0.0)
            out["eer"] = f0 + (-d0 / np.where(d1 > d0, d1 - d0, 1.0)) * (f1 - f0)
            out[TAR_KEY] = np.max(np.where(fpr <= far, tpr, 0.0), axis=1)
    for v in out.values():
        v[~valid] = np.nan
    return out


def _group_counts(
    idx: np.ndarray, gid: np.ndarray, y: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """(chunk, G) counts of drawn same / different pairs per tie group; gid -1 = unscored."""
    c = idx.shape[0]
    width = 2 * (n_groups + 1)  # +1: a dump column for unscored pairs
    g = np.where(gid < 0, n_groups, gid)
    cell = 2 * g + y  # group and label in one code
    flat = (cell[idx] + (np.arange(c, dtype=np.int64) * width)[:, None]).ravel()
    counts = np.bincount(flat, minlength=c * width).reshape(c, n_groups + 1, 2)
    return counts[:, :n_groups, 1], counts[:, :n_groups, 0]


def ranking_from_weights(
    y: np.ndarray,
    s: np.ndarray,
    w: np.ndarray,
    far: float = FAR,
    *,
    only_auc: bool = False,
) -> dict[str, np.ndarray]:
    """AUC, average precision, EER and TAR@FAR per row of pair weights (B, n); NaN where a
    class is absent. Weights may be any non-negative numbers, e.g. resample counts."""
    y = np.asarray(y).astype(np.int64)
    s = np.asarray(s, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if y.size == 0:
        return {k: np.full(w.shape[0], np.nan) for k in _RANKING_KEYS[: 1 if only_auc else 4]}
    gid, _ = _score_groups(s)
    order = np.argsort(gid, kind="stable")
    g = gid[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    pos = np.add.reduceat((w * (y == 1))[:, order], starts, axis=1)
    neg = np.add.reduceat((w * (y == 0))[:, order], starts, axis=1)
    return _ranking_from_counts(pos, neg, far, only_auc)


def _threshold_from_counts(cells: np.ndarray) -> dict[str, np.ndarray]:
    """Threshold metrics per row from (B, 4) counts of tn, fp, fn, tp."""
    tn, fp, fn, tp = (cells[:, k].astype(np.float64) for k in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "accuracy": (tp + tn) / (tp + fp + fn + tn),
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
        }


def _row_bincount(codes: np.ndarray, width: int) -> np.ndarray:
    c = codes.shape[0]
    flat = (codes + (np.arange(c, dtype=np.int64) * width)[:, None]).ravel()
    return np.bincount(flat, minlength=c * width).reshape(c, width)


def bootstrap_distribution(
    y_true: np.ndarray,
    scores: np.ndarray,
    y_pred: np.ndarray | None,
    n_resamples: int,
    seed: int,
    *,
    rates: dict[str, np.ndarray] | None = None,
    far: float = FAR,
    clusters: object | None = None,
    dyads: bool = False,
) -> dict[str, np.ndarray]:
    """Each metric over each resample of the pairs: {metric: (n_resamples,) array, NaN = undefined}.

    ``scores`` may hold NaN for pairs decided without a score: they count in the
    threshold metrics (via ``y_pred``) but not in the ranking metrics, as in the
    point estimates. ``y_pred`` None skips the threshold metrics. ``rates`` adds
    the resampled mean of each given boolean array (e.g. coverage).

    ``clusters`` (a `PairClusters` or an (n,) / (n, 2) label array) resamples
    clusters instead of pairs (pigeonhole weights, see the module docstring);
    ``dyads=True`` gives the dyad bootstrap instead. None: the pair bootstrap.
    """
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    n = y.size
    if n == 0 or n_resamples == 0:
        return {}
    if clusters is not None:
        pc = as_pair_clusters(clusters, n)
        fn = metrics_from_weights(y, s, y_pred, far, rates=rates)
        return _collect(fn, cluster_weight_chunks(pc, n_resamples, seed, dyads=dyads))
    scored = np.isfinite(s)
    gid = np.full(n, -1, dtype=np.int64)
    gid[scored], n_groups = _score_groups(s[scored])
    cell = None if y_pred is None else 2 * y + np.asarray(y_pred, dtype=np.int64)
    flags = {k: np.asarray(v, dtype=bool) for k, v in (rates or {}).items()}
    parts: dict[str, list[np.ndarray]] = {}
    for idx in iter_bootstrap_indices(n, n_resamples, seed):
        found: dict[str, np.ndarray] = {}
        if cell is not None:
            found.update(_threshold_from_counts(_row_bincount(cell[idx], 4)))
        if n_groups:
            pos, neg = _group_counts(idx, gid, y, n_groups)
            found.update(_ranking_from_counts(pos, neg, far, only_auc=False))
        else:
            found.update({k: np.full(idx.shape[0], np.nan) for k in _RANKING_KEYS})
        for name, f in flags.items():
            found[name] = f[idx].sum(axis=1) / n
        for name, v in found.items():
            parts.setdefault(name, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def percentile_ci(values: np.ndarray, level: float = 0.95) -> dict[str, Any] | None:
    """Percentile interval over the finite values; None when no resample defined the metric."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    alpha = (1.0 - level) / 2.0
    lo, hi = np.percentile(v, [100 * alpha, 100 * (1 - alpha)])
    return {"low": float(lo), "high": float(hi), "n_valid": int(v.size)}


def grouped_mean_ci(
    values: np.ndarray,
    groups: np.ndarray,
    n_resamples: int,
    seed: int,
    level: float = 0.95,
) -> dict[str, Any] | None:
    """Percentile interval of the mean of `values`, resampling whole groups (one-way cluster
    bootstrap): observations of one group (e.g. the images of one person) move together.

    Draws come from `iter_bootstrap_indices` over the groups (sorted by `np.unique`); a
    resample's mean is sum(count_g * sum_g) / sum(count_g * size_g). None without resamples.
    """
    v = np.asarray(values, dtype=np.float64)
    if n_resamples == 0 or v.size == 0:
        return None
    _, inv = np.unique(np.asarray(groups), return_inverse=True)
    k = int(inv.max()) + 1
    sums = np.bincount(inv, weights=v, minlength=k)
    sizes = np.bincount(inv, minlength=k).astype(np.float64)
    means = []
    for idx in iter_bootstrap_indices(k, n_resamples, seed):
        w = resample_weights(idx, k)
        den = w @ sizes
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append(np.where(den > 0, (w @ sums) / den, np.nan))
    out = percentile_ci(np.concatenate(means), level)
    if out is not None:
        out["method"] = "one-way cluster bootstrap (groups resampled), percentile"
    return out


def bootstrap_ci(
    y_true: np.ndarray,
    scores: np.ndarray,
    y_pred: np.ndarray | None,
    n_resamples: int,
    seed: int,
    *,
    level: float = 0.95,
    rates: dict[str, np.ndarray] | None = None,
    metrics: tuple[str, ...] = (),
    clusters: object | None = None,
) -> dict[str, Any]:
    """Bootstrap intervals for every metric; the block written to metrics.json.

    clusters None: percentile intervals of the pair bootstrap. With ``clusters``
    (`clusters.pair_clusters`): the two-way cluster bootstrap (module docstring);
    each interval then also has ``estimate`` and ``se``.
    """
    out: dict[str, Any] = {
        "method": "percentile bootstrap, pairs resampled with replacement"
        if clusters is None
        else _CLUSTER_METHOD,
        "level": level,
        "resamples": int(n_resamples),
        "seed": int(seed),
        "intervals": {},
        "null_reasons": {},
    }
    names = metrics or (
        THRESHOLD_METRICS * (y_pred is not None) + RANKING_METRICS + tuple(rates or ())
    )
    if n_resamples == 0:
        out["null_reasons"] = dict.fromkeys(names, "bootstrap disabled (bootstrap = 0)")
        out["intervals"] = dict.fromkeys(names)
        return out
    if np.asarray(y_true).size == 0:
        out["null_reasons"] = dict.fromkeys(names, "no pairs to resample")
        out["intervals"] = dict.fromkeys(names)
        return out
    if clusters is not None:
        n = int(np.asarray(y_true).size)
        pc = as_pair_clusters(clusters, n)
        out["clusters"] = {"clusters": pc.n_clusters, "dyads": pc.n_dyads}
        fn = metrics_from_weights(y_true, scores, y_pred, rates=rates)
        found = interval_from_weights(fn, n, n_resamples, seed, clusters=pc, level=level)
    else:
        dist = bootstrap_distribution(y_true, scores, y_pred, n_resamples, seed, rates=rates)
        found = {k: percentile_ci(v, level) for k, v in dist.items()}
    for name in names:
        ci = found.get(name)
        out["intervals"][name] = ci
        if ci is None:
            out["null_reasons"][name] = "undefined in every resample (e.g. one class only)"
    return out


def mcnemar(
    correct_a: np.ndarray, correct_b: np.ndarray, *, clusters: object | None = None
) -> dict[str, Any]:
    """Exact McNemar test on paired correct/incorrect decisions.

    b = pairs only system A got right, c = pairs only B got right; the p-value
    is the two-sided exact binomial test of b against Binomial(b + c, 1/2)
    (scipy.stats.binomtest). Chosen over the chi-square approximation because
    discordant counts are often small here. With no discordant pairs p = 1.

    With ``clusters``, discordant pairs that share a person are not independent
    coin flips: the test is then z = (b - c) / sqrt(V) with V the two-way
    cluster-robust variance of the discordance difference (`two_way_variance`;
    a clustered McNemar as in Obuchowski 1998 / Durkalski et al. 2003, two-way
    as in Cameron, Gelbach & Miller 2011); it reduces to McNemar's chi-square
    when every pair is its own cluster.
    """
    a = np.asarray(correct_a, dtype=bool)
    bb = np.asarray(correct_b, dtype=bool)
    b = int(np.sum(a & ~bb))
    c = int(np.sum(~a & bb))
    if clusters is not None:
        t = paired_difference_test(a, bb, clusters=clusters)
        return {
            "test": "clustered McNemar (two-way cluster-robust z on the discordance difference)",
            "n": int(a.size),
            "both_correct": int(np.sum(a & bb)),
            "b": b,
            "c": c,
            "both_wrong": int(np.sum(~a & ~bb)),
            "z": t["z"],
            "p_value": t["p_value"],
        }
    p = float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue) if b + c else 1.0
    return {
        "test": "exact McNemar (two-sided binomial on discordant pairs)",
        "n": int(a.size),
        "both_correct": int(np.sum(a & bb)),
        "b": b,
        "c": c,
        "both_wrong": int(np.sum(~a & ~bb)),
        "p_value": p,
    }


def paired_bootstrap_auc(
    y_true: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    n_resamples: int,
    seed: int,
    level: float = 0.95,
    *,
    clusters: object | None = None,
) -> dict[str, Any]:
    """AUC(A) - AUC(B) on the same pairs, with both systems resampled by the same draws.

    ``p_value`` is the two-sided bootstrap fraction 2 * min(P(diff <= 0), P(diff >= 0)),
    capped at 1: a rough guide, not an exact test. With ``clusters``: the two-way
    cluster bootstrap (module docstring), z = diff / se, normal p-value and interval;
    the result then also has ``se`` and ``method``.
    """
    y = np.asarray(y_true).astype(np.int64)
    sa = np.asarray(scores_a, dtype=np.float64)
    sb = np.asarray(scores_b, dtype=np.float64)
    out: dict[str, Any] = {
        "n": int(y.size),
        "resamples": int(n_resamples),
        "seed": int(seed),
        "level": level,
        "auc_a": None,
        "auc_b": None,
        "diff": None,
        "mean_diff": None,
        "ci": None,
        "p_value": None,
        "null_reasons": {},
    }
    if y.size == 0 or y.min() == y.max():
        out["null_reasons"]["diff"] = "fewer than two classes among pairs both systems scored"
        return out
    out["auc_a"] = float(roc_auc_score(y, sa))
    out["auc_b"] = float(roc_auc_score(y, sb))
    out["diff"] = out["auc_a"] - out["auc_b"]
    if n_resamples == 0:
        out["null_reasons"]["ci"] = "bootstrap disabled (bootstrap = 0)"
        return out
    if clusters is not None:
        pc = as_pair_clusters(clusters, y.size)

        def fn_diff(w: np.ndarray) -> np.ndarray:
            auc_a = ranking_from_weights(y, sa, w, only_auc=True)["auc"]
            return auc_a - ranking_from_weights(y, sb, w, only_auc=True)["auc"]

        res = paired_from_weights(fn_diff, y.size, n_resamples, seed, clusters=pc, level=level)
        out.update({k: res[k] for k in ("mean_diff", "ci", "p_value")})
        out["se"] = res.get("se")
        out["method"] = _CLUSTER_METHOD
        if out["ci"] is None:
            out["null_reasons"]["ci"] = "every resample had one class only"
        return out
    ga, na = _score_groups(sa)
    gb, nb = _score_groups(sb)
    diffs = []
    for idx in iter_bootstrap_indices(y.size, n_resamples, seed):
        auc_a = _ranking_from_counts(*_group_counts(idx, ga, y, na), FAR, True)["auc"]
        auc_b = _ranking_from_counts(*_group_counts(idx, gb, y, nb), FAR, True)["auc"]
        diffs.append(auc_a - auc_b)
    d = np.concatenate(diffs)
    d = d[np.isfinite(d)]
    if d.size == 0:
        out["null_reasons"]["ci"] = "every resample had one class only"
        return out
    out["mean_diff"] = fnum(d.mean())
    out["ci"] = percentile_ci(d, level)
    out["p_value"] = float(min(1.0, 2.0 * min(np.mean(d <= 0), np.mean(d >= 0))))
    return out


# --- Dependence-aware (cluster) resampling -------------------------------------------------------


def _draw_chunks(units: int, width: int, n_resamples: int, seed: Any) -> Iterator[np.ndarray]:
    """(chunk, units) draws of `units` indices with replacement; chunks sized by `width`."""
    rng = np.random.default_rng(seed)
    rows = _chunk_rows(max(width, units), n_resamples)
    done = 0
    while done < n_resamples:
        take = min(rows, n_resamples - done)
        yield rng.integers(0, max(units, 1), size=(take, units), dtype=np.int64)
        done += take


def _dyad_seed(seed: int) -> list[int]:
    return [int(seed), 1]  # its own stream, independent of the cluster draws


def cluster_bootstrap_indices(
    clusters: PairClusters, n_resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """All draws as ((B, n_clusters) cluster indices, (B, n_dyads) dyad indices): what
    `cluster_weight_chunks` turns into pair weights (for tests and brute-force checks)."""
    pc = clusters
    if n_resamples == 0:
        return np.zeros((0, pc.n_clusters), np.int64), np.zeros((0, pc.n_dyads), np.int64)
    c = np.concatenate(list(_draw_chunks(pc.n_clusters, pc.n, n_resamples, seed)))
    d = np.concatenate(list(_draw_chunks(pc.n_dyads, pc.n, n_resamples, _dyad_seed(seed))))
    return c, d


def cluster_weight_chunks(
    clusters: PairClusters, n_resamples: int, seed: int, *, dyads: bool = False
) -> Iterator[np.ndarray]:
    """Pair weights per resample, as (chunk, n) float64 arrays.

    Cluster draws (``dyads=False``): a one-cluster pair weighs its cluster's draw
    count, a two-cluster pair the product of its two clusters' counts (pigeonhole
    bootstrap). Dyad draws (``dyads=True``): a two-cluster pair weighs its dyad's
    count, one-cluster pairs weigh 1.
    """
    pc = clusters
    two = np.flatnonzero(pc.two)
    if dyads:
        for idx in _draw_chunks(pc.n_dyads, pc.n, n_resamples, _dyad_seed(seed)):
            counts = resample_weights(idx, pc.n_dyads)
            w = np.ones((idx.shape[0], pc.n))
            w[:, two] = counts[:, pc.dyad[two]]
            yield w
        return
    for idx in _draw_chunks(pc.n_clusters, pc.n, n_resamples, seed):
        counts = resample_weights(idx, pc.n_clusters)
        w = counts[:, pc.a]
        w[:, two] *= counts[:, pc.b[two]]
        yield w


def _pair_weight_chunks(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    for idx in iter_bootstrap_indices(n, n_resamples, seed):
        yield resample_weights(idx, n)


def metrics_from_weights(
    y_true: np.ndarray,
    scores: np.ndarray,
    y_pred: np.ndarray | None,
    far: float = FAR,
    *,
    rates: dict[str, np.ndarray] | None = None,
) -> Any:
    """A function w -> {metric: (B,) array} for (B, n) pair weights: the threshold metrics
    (when ``y_pred`` is given), the ranking metrics over pairs with a finite score, and the
    weighted mean of each ``rates`` flag. Weights of ones give the point estimates."""
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    scored = np.flatnonzero(np.isfinite(s))
    onehot = None
    if y_pred is not None:
        cell = 2 * y + np.asarray(y_pred, dtype=np.int64)
        onehot = np.eye(4)[cell]
    flags = {k: np.asarray(v, dtype=np.float64) for k, v in (rates or {}).items()}
    ys, ss = y[scored], s[scored]

    def fn(w: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if onehot is not None:
            out.update(_threshold_from_counts(w @ onehot))
        if scored.size:
            out.update(ranking_from_weights(ys, ss, w[:, scored], far))
        else:
            out.update({k: np.full(w.shape[0], np.nan) for k in _RANKING_KEYS})
        tot = w.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            for name, f in flags.items():
                out[name] = (w @ f) / tot
        return out

    return fn


def _collect(fn: Any, chunks: Iterator[np.ndarray]) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for w in chunks:
        for name, v in fn(w).items():
            parts.setdefault(name, []).append(np.asarray(v, dtype=np.float64))
    return {k: np.concatenate(v) for k, v in parts.items()}


def _finite_var(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(np.var(v, ddof=1)) if v.size > 1 else float("nan")


def two_way_variance(psi: np.ndarray, clusters: PairClusters) -> float:
    """Two-way cluster-robust variance of sum(psi): sum over pairs i, j that share a cluster of
    psi_i psi_j = sum_c S_c^2 - sum_d S_d^2 (Cameron, Gelbach & Miller 2011; the dyad term
    removes the double count of pairs that share both clusters). Falls back to sum(psi^2)
    (independent pairs) if the difference is not positive."""
    pc = clusters
    p = np.asarray(psi, dtype=np.float64)
    two = pc.two
    s_c = np.bincount(pc.a, p, minlength=pc.n_clusters)
    s_c += np.bincount(pc.b[two], p[two], minlength=pc.n_clusters)
    s_d = np.bincount(pc.dyad[two], p[two], minlength=pc.n_dyads) if pc.n_dyads else np.zeros(0)
    v = float(np.sum(s_c**2) - np.sum(s_d**2))
    return v if v > 0 else float(np.sum(p**2))


def _combine(
    est: dict[str, np.ndarray], dist_c: dict[str, np.ndarray], dist_d: dict[str, np.ndarray] | None
) -> dict[str, tuple[float, float, int]]:
    """(estimate, standard error, n_valid) per metric from the two bootstraps (see module doc)."""
    out = {}
    for name, e in est.items():
        vc = _finite_var(dist_c[name])
        vd = _finite_var(dist_d[name]) if dist_d is not None else 0.0
        v = vc - 2.0 * vd if np.isfinite(vd) else vc
        if not v > 0:
            v = vc
        out[name] = (float(e[0]), float(np.sqrt(v)), int(np.isfinite(dist_c[name]).sum()))
    return out


def interval_from_weights(
    fn: Any,
    n: int,
    n_resamples: int,
    seed: int,
    *,
    clusters: object | None = None,
    level: float = 0.95,
    bounds: tuple[float, float] = (0.0, 1.0),
    percentile: tuple[str, ...] = PERCENTILE_METRICS,
) -> dict[str, dict[str, Any] | None]:
    """Intervals for every metric of ``fn`` (w -> {metric: (B,) array}) over n pairs.

    clusters None: percentile intervals of the pair bootstrap (as `bootstrap_ci`).
    With clusters: estimate +- z * se with the two-way variance V_clusters - 2 V_dyads,
    clipped to ``bounds``; each interval also carries ``estimate``, ``se`` and ``kind``
    ("normal"). Metrics named in ``percentile`` (TAR@FAR: a tail quantile of the
    different-person scores, set by a handful of pairs, where the variance subtraction
    is unstable; bench/bench_intervals.py) get the percentile interval of the
    pigeonhole draws instead (``kind`` "percentile").
    """
    if clusters is None:
        dist = _collect(fn, _pair_weight_chunks(n, n_resamples, seed))
        return {k: percentile_ci(v, level) for k, v in dist.items()}
    pc = as_pair_clusters(clusters, n)
    est = fn(np.ones((1, n)))
    dist_c = _collect(fn, cluster_weight_chunks(pc, n_resamples, seed))
    dist_d = _collect(fn, cluster_weight_chunks(pc, n_resamples, seed, dyads=True))
    z = float(norm.ppf(0.5 + level / 2.0))
    out: dict[str, dict[str, Any] | None] = {}
    for name, (e, se, n_valid) in _combine(est, dist_c, dist_d if pc.n_dyads else None).items():
        if not (np.isfinite(e) and np.isfinite(se)):
            out[name] = None
            continue
        if name in percentile:
            ci = percentile_ci(dist_c[name], level)
            if ci is not None:
                ci.update(estimate=e, se=_finite_var(dist_c[name]) ** 0.5, kind="percentile")
            out[name] = ci
            continue
        lo, hi = max(bounds[0], e - z * se), min(bounds[1], e + z * se)
        out[name] = {
            "low": lo,
            "high": hi,
            "n_valid": n_valid,
            "estimate": e,
            "se": se,
            "kind": "normal",
        }
    return out


def paired_from_weights(
    fn_diff: Any,
    n: int,
    n_resamples: int,
    seed: int,
    *,
    clusters: object | None = None,
    level: float = 0.95,
) -> dict[str, Any]:
    """A paired comparison of a difference statistic fn_diff(w) -> (B,) array (A minus B).

    clusters None: percentile interval and the bootstrap fraction p-value (as
    `paired_bootstrap_auc`). With clusters: z = diff / se with the two-way variance
    (V_clusters - 2 V_dyads), two-sided normal p-value and Wald interval.
    """
    d0 = float(np.asarray(fn_diff(np.ones((1, n))))[0])
    out: dict[str, Any] = {"diff": fnum(d0), "mean_diff": None, "ci": None, "p_value": None}
    if clusters is None:
        d = _collect(lambda w: {"d": fn_diff(w)}, _pair_weight_chunks(n, n_resamples, seed))["d"]
        d = d[np.isfinite(d)]
        if d.size:
            out["mean_diff"] = fnum(d.mean())
            out["ci"] = percentile_ci(d, level)
            out["p_value"] = float(min(1.0, 2.0 * min(np.mean(d <= 0), np.mean(d >= 0))))
        return out
    pc = as_pair_clusters(clusters, n)
    f = lambda w: {"d": fn_diff(w)}  # noqa: E731
    dc = _collect(f, cluster_weight_chunks(pc, n_resamples, seed))
    dd = (
        _collect(f, cluster_weight_chunks(pc, n_resamples, seed, dyads=True))
        if pc.n_dyads
        else None
    )
    e, se, n_valid = _combine({"d": np.array([d0])}, dc, dd)["d"]
    if n_valid == 0 or not np.isfinite(se):
        return out
    z = float(norm.ppf(0.5 + level / 2.0))
    out["mean_diff"] = fnum(np.nanmean(dc["d"]))
    out["ci"] = {"low": max(-1.0, e - z * se), "high": min(1.0, e + z * se), "n_valid": n_valid}
    out["se"] = se
    if se > 0:
        out["p_value"] = float(2.0 * norm.sf(abs(e) / se))
    else:
        out["p_value"] = 1.0 if e == 0.0 else 0.0
    return out


def paired_difference_test(
    values_a: np.ndarray, values_b: np.ndarray, *, clusters: object | None = None
) -> dict[str, Any]:
    """Paired test that mean(values_a - values_b) = 0 (values: per-pair correctness, 0/1 or
    the coverage-aware 0/0.5/1), variance sum(psi^2) under the null (independent pairs;
    with 0/1 values z^2 is the McNemar chi-square) or `two_way_variance` with clusters."""
    a = np.asarray(values_a, dtype=np.float64)
    b = np.asarray(values_b, dtype=np.float64)
    psi = a - b
    n = psi.size
    out: dict[str, Any] = {
        "n": int(n),
        "b": fnum(np.sum(np.maximum(psi, 0.0))),
        "c": fnum(np.sum(np.maximum(-psi, 0.0))),
        "diff": fnum(psi.mean()) if n else None,
        "se": None,
        "z": None,
        "p_value": 1.0,
    }
    if n == 0 or not np.any(psi):
        out["se"] = 0.0 if n else None
        return out
    v = (
        float(np.sum(psi**2))
        if clusters is None
        else two_way_variance(psi, as_pair_clusters(clusters, n))
    )
    z = float(psi.sum() / np.sqrt(v))
    out.update({"se": float(np.sqrt(v)) / n, "z": z, "p_value": float(2.0 * norm.sf(abs(z)))})
    return out
