"""CMC / mAP / mINP of the gallery-ranking task, with intervals and paired comparisons.

Each query is ranked against its own gallery by the run's evaluator
(`metrics.retrieval.evaluate_retrieval`, torchreid's rules) on a 1 x G distance row,
distance = -score. A pair the system did not answer (API error, refusal, unreadable
answer) ranks last: below every answered image, and among unanswered images the true
matches rank below the others, so a failure is never rewarded. Ties between answered
scores are broken by gallery position (a seeded shuffle), as torchreid's stable sort does.

Intervals resample query identities with replacement (queries of one person share
their identity's images; a one-way cluster bootstrap over identities), percentile
intervals. Paired comparisons use the same draws for both systems on the identical
queries; the p-value is two-sided, 2 (k + 1) / (B + 1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from reidbench.errors import UserError
from reidbench.metrics import stats
from reidbench.metrics.retrieval import evaluate_retrieval
from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.tables import read_table
from reidbench.tasks.config import GalleryTask
from reidbench.tasks.gallery import item_scores, read_items, task_dir

FAILED_NEGATIVE = np.finfo(np.float64).max  # below every answered image
FAILED_POSITIVE = np.inf  # below that too: a failure never finds a true match
RANKS = (1, 5, 10)
METHOD = "percentile bootstrap over query identities (queries of one identity resampled together)"


def distance_rows(score: np.ndarray, answered: np.ndarray, label: np.ndarray) -> np.ndarray:
    """(Q, G) distances: -score where answered; unanswered images last, true matches lowest."""
    d = -np.asarray(score, dtype=np.float64)
    d = np.where(answered, d, np.where(label == 1, FAILED_POSITIVE, FAILED_NEGATIVE))
    return d


def per_query(
    dist: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_cams: np.ndarray,
    g_cams: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per query (rows; each has its own gallery row of pids/cams): AP, INP, first-match rank
    (0-based), each from the run's evaluator on that query's 1 x G row."""
    q = dist.shape[0]
    ap, inp, first = np.zeros(q), np.zeros(q), np.zeros(q, np.int64)
    for i in range(q):
        r = evaluate_retrieval(
            dist[i : i + 1],
            q_pids[i : i + 1],
            g_pids[i],
            q_cams[i : i + 1],
            g_cams[i],
            max_rank=dist.shape[1],
        )
        ap[i], inp[i], first[i] = r.all_AP[0], r.all_INP[0], r.first_match_rank[0]
    return {"ap": ap, "inp": inp, "first": first}


def _values(pq: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {f"rank{k}": (pq["first"] < k).astype(np.float64) for k in RANKS}
    out["mAP"] = pq["ap"]
    out["mINP"] = pq["inp"]
    return out


def _weight_chunks(codes: np.ndarray, boot: Bootstrap) -> Iterator[np.ndarray]:
    """(chunk, Q) query weights: each query weighs its identity's draw count."""
    n_clusters = int(codes.max()) + 1 if codes.size else 0
    for idx in stats.iter_bootstrap_indices(n_clusters, boot.n_boot, boot.seed):
        yield stats.resample_weights(idx, n_clusters)[:, codes]


def _weighted(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w @ values) / total[:, None]


def _two_sided(d: np.ndarray) -> float | None:
    d = d[np.isfinite(d)]
    if d.size == 0:
        return None
    k = int(min(np.sum(d <= 0), np.sum(d >= 0)))
    return float(min(1.0, 2.0 * (k + 1) / (d.size + 1)))


def system_intervals(
    values: dict[str, np.ndarray], codes: np.ndarray, boot: Bootstrap
) -> dict[str, Any]:
    """Percentile intervals of each mean metric under the identity bootstrap."""
    if boot.n_boot == 0:
        return dict.fromkeys(values)
    names = list(values)
    mat = np.stack([values[n] for n in names], axis=1)  # (Q, M)
    draws = np.concatenate([_weighted(mat, w) for w in _weight_chunks(codes, boot)])
    return {n: stats.percentile_ci(draws[:, j], boot.level) for j, n in enumerate(names)}


def paired(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], codes: np.ndarray, boot: Bootstrap
) -> dict[str, Any]:
    """A minus B for mAP and rank-1 on the identical queries, same draws for both."""
    out: dict[str, Any] = {}
    keys = ("mAP", "rank1")
    diff = np.stack([a[k] - b[k] for k in keys], axis=1)
    draws = (
        np.concatenate([_weighted(diff, w) for w in _weight_chunks(codes, boot)])
        if boot.n_boot
        else np.zeros((0, len(keys)))
    )
    for j, k in enumerate(keys):
        out[k] = {
            "diff": float(diff[:, j].mean()),
            "ci": stats.percentile_ci(draws[:, j], boot.level) if boot.n_boot else None,
            "p_value": _two_sided(draws[:, j]) if boot.n_boot else None,
        }
    return out


def gallery_metrics(
    run_dir: str | Path, task: GalleryTask, bootstrap: Bootstrap, *, name: str = "gallery"
) -> dict[str, Any]:
    """The `tasks.<name>` block of metrics.json for a finished gallery task (docs/tasks.md)."""
    folder = task_dir(Path(run_dir), name)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise UserError(f"{manifest_path}: missing; run the experiment (reidbench run) first")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    items = read_items(folder / "items.parquet")
    t = items.table
    Q, G = int(items.meta["n_queries"]), int(items.meta["gallery_size"])
    label = np.asarray(t.column("label").to_numpy(), dtype=np.int64).reshape(Q, G)
    q_pids = np.asarray(t.column("pid_a").to_numpy()).reshape(Q, G)[:, 0]
    q_cams = np.asarray(t.column("cam_a").to_numpy()).reshape(Q, G)[:, 0]
    g_pids = np.asarray(t.column("pid_b").to_numpy()).reshape(Q, G)
    g_cams = np.asarray(t.column("cam_b").to_numpy()).reshape(Q, G)
    _, codes = np.unique(q_pids, return_inverse=True)

    systems: dict[str, Any] = {}
    values: dict[str, dict[str, np.ndarray]] = {}
    for entry in manifest.get("systems", []):
        scores = read_table(folder / entry["file"])
        score, answered = item_scores(t, scores)
        dist = distance_rows(score.reshape(Q, G), answered.reshape(Q, G), label)
        pq = per_query(dist, q_pids, g_pids, q_cams, g_cams)
        v = _values(pq)
        values[entry["name"]] = v
        cmc = [float(np.mean(pq["first"] < k)) for k in range(1, G + 1)]
        block: dict[str, Any] = {
            "type": entry.get("type"),
            **{k: float(x.mean()) for k, x in v.items()},
            "cmc": cmc,
            "coverage": float(answered.mean()),
            "n_items": int(answered.size),
            "n_answered": int(answered.sum()),
            "ci": system_intervals(v, codes, bootstrap),
        }
        systems[entry["name"]] = block
    names = list(systems)
    comparisons = [
        {"a": x, "b": y, **paired(values[x], values[y], codes, bootstrap)}
        for i, x in enumerate(names)
        for y in names[i + 1 :]
    ]
    return {
        "kind": "gallery",
        "task": task.model_dump(mode="json"),
        "n_queries": Q,
        "gallery_size": G,
        "n_query_ids": int(codes.max()) + 1 if codes.size else 0,
        "items_hash": items.content_hash,
        "items": {k: v for k, v in items.meta.items() if k not in ("format",)},
        "bootstrap": {
            "method": METHOD,
            "resamples": bootstrap.n_boot,
            "seed": bootstrap.seed,
            "level": bootstrap.level,
        },
        "failed_pairs": "rank last; unanswered true matches below unanswered others",
        "systems": systems,
        "comparisons": comparisons,
    }
