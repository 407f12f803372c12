"""`reidbench rerank CONFIG`: re-order a ReID model's top-k gallery lists with LVLM judgements.

Writes into the output folder:
- `rerank.json`: settings, protocol, metrics before/after, calls and cost, per-query lists;
- `rerank_pairs.parquet` (`PAIRS_SCHEMA`): the (query, gallery item) pairs judged;
- `rerank_scores.parquet` (`SCORES_SCHEMA`): the LVLM's answers to them;
- `rerank.md`: the Markdown summary the command prints;
- `cache/`: the feature cache and the LVLM response cache. Every answer is committed as
  it arrives, so an interrupted re-ranking resumes, and a finished one re-runs with zero
  calls.
When the folder is a run directory (it has `run.json`), `reidbench report` shows the
re-ranking section from `rerank.json`.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reidbench import __version__
from reidbench.config import RerankConfig
from reidbench.errors import UserError
from reidbench.files import write_json_atomic, write_text_atomic
from reidbench.fusion.cascade import unit_scores
from reidbench.fusion.rerank import (
    has_match,
    rerank_list,
    reranked_distmat,
    select_queries,
    top_k_lists,
)
from reidbench.metrics.run.retrieval_band import rerank_paired
from reidbench.progress import Log, ProgressFactory, no_log
from reidbench.report import format as fmt
from reidbench.rundir import DEFAULT_SCALE
from reidbench.rundir.lock import locks_run_dir
from reidbench.tables import PAIRS_SCHEMA, SCORES_SCHEMA, write_table

FORMAT = "reidbench.rerank/1"

PROTOCOL = {
    "queries": "a seeded subset (numpy default_rng(seed).choice, no replacement) of the "
    "queries with at least one true match after the junk rule, or all of them",
    "top_k": "the k nearest gallery items by cosine distance (ties by gallery index) after "
    "removing junk (same pid and same camera as the query): the LVLM is never asked about "
    "an item the metrics ignore",
    "fuse": "(1 - alpha) * r + alpha * u; r = ReID similarity min-max normalised within the "
    "query's top-k, u = LVLM score on [0, 1] with its threshold at 0.5; ties keep ReID order",
    "confirm": "items the LVLM calls 'same' first, then the other answered items, each in "
    "ReID order",
    "failures": "an item whose LVLM answer failed keeps its ReID position",
    "beyond_top_k": "unchanged",
    "metrics": "reidbench.metrics.evaluate_retrieval (Market-1501 protocol) on the selected "
    "queries, before and after, from a distance matrix whose stable order is the re-ranked "
    "order",
}


def _summary(result: Any) -> dict[str, Any]:
    cmc = np.asarray(result.cmc, dtype=float)
    return {
        "rank1": float(cmc[0]),
        "rank5": float(cmc[min(4, cmc.size - 1)]),
        "rank10": float(cmc[min(9, cmc.size - 1)]),
        "mAP": float(result.mAP),
        "mINP": float(result.mINP),
        "cmc": cmc.tolist(),
        "num_valid_queries": int(result.num_valid_queries),
    }


def _pairs_table(dataset, sel, lists, q_pids, g_pids, q_cams, g_cams) -> pa.Table:
    n_g = len(dataset.gallery)
    qi = np.concatenate([np.full(len(items), q) for q, items in zip(sel, lists, strict=True)])
    gi = np.concatenate(lists) if lists else np.zeros(0, np.int64)
    qi, gi = qi.astype(np.int64), np.asarray(gi, dtype=np.int64)
    return pa.table(
        {
            "pair_id": qi * n_g + gi,
            "path_a": [dataset.query[int(i)].path for i in qi],
            "path_b": [dataset.gallery[int(i)].path for i in gi],
            "pid_a": q_pids[qi],
            "pid_b": g_pids[gi],
            "cam_a": q_cams[qi],
            "cam_b": g_cams[gi],
            "label": (q_pids[qi] == g_pids[gi]).astype(np.int8),
        },
        schema=PAIRS_SCHEMA,
    )


def _lvlm_accounting(table: pa.Table) -> dict[str, Any]:
    rows = table.to_pydict()
    status = np.asarray(rows["status"], dtype=object)
    cached = np.asarray([bool(c) for c in rows["cached"]])
    attempts = np.asarray([a or 0 for a in rows["attempts"]], dtype=np.int64)
    cost = np.asarray([np.nan if c is None else c for c in rows["cost_usd"]], dtype=np.float64)
    values, counts = np.unique(status, return_counts=True)
    return {
        "pairs_judged": int(status.size),
        "answered": int(np.sum(status == "ok")),
        "by_status": {str(v): int(c) for v, c in zip(values, counts, strict=True)},
        "cached_rows": int(cached.sum()),
        "calls_this_run": int(attempts[~cached].sum()),
        "usd_this_run": float(np.nansum(cost[~cached])),
        "usd_answers": float(np.nansum(cost)),
        "cost_known": bool(not np.isnan(cost[status == "ok"]).any()),
        "note": "calls = attempts (retries included) of answers not served from the cache",
    }


@locks_run_dir("out")  # the output folder may be a run directory: one writer at a time
def run_rerank(
    cfg: RerankConfig,
    out: str | Path,
    *,
    progress: ProgressFactory | None = None,
    log: Log = no_log,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Re-rank, evaluate before/after, write the outputs; returns the `rerank.json` object."""
    from reidbench.judges import judge_pairs, system_manifest
    from reidbench.metrics import evaluate_retrieval, pairwise_distance
    from reidbench.models import FeatureCache, extract_features, load_embedder

    environ = os.environ if environ is None else environ
    make_progress: ProgressFactory = progress or (lambda _unit: None)
    out = Path(out)
    r = cfg.rerank
    from reidbench.preflight import Preflight, run_preflight

    pre = Preflight([cfg.reid, cfg.lvlm], environ, out=out, dataset_root=cfg.dataset.root)
    run_preflight(pre, log=log)  # keys, weights and the endpoint before any feature
    dataset = cfg.dataset.load()
    if not dataset.query or not dataset.gallery:
        raise UserError(
            f"{dataset.root}: re-ranking needs query and gallery images "
            f"(found {len(dataset.query)} query, {len(dataset.gallery)} gallery)"
        )
    system_manifest(cfg.lvlm)  # a bad LVLM config fails here, before any feature is computed
    out.mkdir(parents=True, exist_ok=True)
    q_pids, q_cams = dataset.ids("query")
    g_pids, g_cams = dataset.ids("gallery")
    sel = select_queries(has_match(q_pids, q_cams, g_pids, g_cams), r.queries, r.seed)
    if sel.size == 0:
        raise UserError(f"{dataset.root}: no query has a true match in the gallery; check it")
    log(f"re-ranking {sel.size} of {len(dataset.query)} queries, top-{r.top_k}, {r.method}")

    embedder = load_embedder(cfg.reid.model, weights=cfg.reid.weights, device=cfg.reid.device)
    with FeatureCache(out / "cache" / "features") as cache:
        qf = extract_features(
            embedder,
            [dataset.abspath(dataset.query[int(i)]) for i in sel],
            batch_size=cfg.reid.batch_size,
            cache=cache,
            progress=make_progress("img"),
            camids=[dataset.query[int(i)].camid for i in sel],
        )
        gf = extract_features(
            embedder,
            [dataset.abspath(x) for x in dataset.gallery],
            batch_size=cfg.reid.batch_size,
            cache=cache,
            progress=make_progress("img"),
            camids=[x.camid for x in dataset.gallery],
        )
    dist = pairwise_distance(qf, gf, "cosine").astype(np.float64)
    qp, qc = q_pids[sel], q_cams[sel]
    lists = top_k_lists(dist, qp, qc, g_pids, g_cams, r.top_k)

    pairs = _pairs_table(dataset, sel, lists, q_pids, g_pids, q_cams, g_cams)
    stopped: list[str] = []
    answers = judge_pairs(
        cfg.lvlm,
        pairs,
        dataset.root,
        cache_path=out / "cache" / "responses.sqlite",
        progress=make_progress("call"),
        environ=environ,
        stopped=stopped,
    )
    primary = answers.filter(
        pc.and_(pc.equal(answers.column("order"), "ab"), pc.equal(answers.column("repeat"), 0))
    )
    by_id = {
        int(pid): (score, dec, st)
        for pid, score, dec, st in zip(
            primary.column("pair_id").to_pylist(),
            primary.column("score").to_pylist(),
            primary.column("decision").to_pylist(),
            primary.column("status").to_pylist(),
            strict=True,
        )
    }
    thr, scale = cfg.lvlm.threshold, DEFAULT_SCALE["lvlm"]
    n_g = len(dataset.gallery)
    new_lists, per_query = [], []
    for row, (q, items) in enumerate(zip(sel, lists, strict=True)):
        got = [by_id[int(q) * n_g + int(g)] for g in items]
        score = np.array([np.nan if s is None else s for s, _, _ in got], dtype=np.float64)
        dec = np.array([x for _, x, _ in got], dtype=object)
        ok = np.array([st == "ok" for _, _, st in got]) & (
            np.isfinite(score) | np.isin(dec, ["same", "different"])
        )
        unit = unit_scores(score, dec, ok, thr, scale)
        same = np.where(np.isfinite(score), score >= thr, dec == "same")
        new = rerank_list(
            items, 1.0 - dist[row, items] / 2.0, unit, same, method=r.method, alpha=r.alpha
        )
        new_lists.append(new)
        per_query.append(
            {
                "query": int(q),
                "path": dataset.query[int(q)].path,
                "pid": int(q_pids[q]),
                "before": [int(g) for g in items],
                "after": [int(g) for g in new],
                "lvlm_failed": int((~ok).sum()),
            }
        )
    max_rank = min(r.max_rank, n_g)
    before = evaluate_retrieval(dist, qp, g_pids, qc, g_cams, max_rank=max_rank)
    after = evaluate_retrieval(
        reranked_distmat(dist, new_lists), qp, g_pids, qc, g_cams, max_rank=max_rank
    )
    _add_per_query(per_query, before, after)
    result = _result(cfg, dataset, embedder, sel, before, after, answers, per_query)
    result["paired"] = _paired(per_query, r.seed)
    result["stopped"] = stopped  # the circuit breaker's reasons: `rerank` exits 3
    write_table(out / "rerank_pairs.parquet", pairs)
    write_table(out / "rerank_scores.parquet", answers.cast(SCORES_SCHEMA))
    write_json_atomic(out / "rerank.json", result)
    write_text_atomic(out / "rerank.md", rerank_markdown(result))
    return result


def _add_per_query(per_query: list[dict[str, Any]], before: Any, after: Any) -> None:
    """Each selected query's first-match rank (0-based) and AP, before and after."""
    for label, res in (("before", before), ("after", after)):
        rank = dict(zip(res.valid_queries.tolist(), res.first_match_rank.tolist(), strict=True))
        ap = dict(zip(res.valid_queries.tolist(), res.all_AP.tolist(), strict=True))
        for row, entry in enumerate(per_query):
            entry[f"first_match_rank_{label}"] = rank.get(row)
            entry[f"ap_{label}"] = ap.get(row)


def _paired(per_query: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    """Paired tests of after against before on the queries valid both times."""
    keys = ("first_match_rank_before", "first_match_rank_after", "ap_before", "ap_after")
    rows = [q for q in per_query if all(q.get(k) is not None for k in keys)]
    return rerank_paired(
        np.array([q["pid"] for q in rows], dtype=np.int64),
        np.array([q["first_match_rank_before"] for q in rows], dtype=np.int64),
        np.array([q["first_match_rank_after"] for q in rows], dtype=np.int64),
        np.array([q["ap_before"] for q in rows], dtype=np.float64),
        np.array([q["ap_after"] for q in rows], dtype=np.float64),
        seed=seed,
    )


def _result(cfg, dataset, embedder, sel, before, after, answers, per_query) -> dict[str, Any]:
    from reidbench.judges import system_manifest

    b, a = _summary(before), _summary(after)
    return {
        "format": FORMAT,
        "name": cfg.name,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reidbench_version": __version__,
        "dataset": {
            "name": dataset.name,
            "root": str(dataset.root),
            "synthetic": bool(dataset.synthetic),
            "query_images": len(dataset.query),
            "gallery_images": len(dataset.gallery),
        },
        "reid": {
            "name": cfg.reid.name,
            "model": cfg.reid.model,
            "weights": cfg.reid.weights,
            "fingerprint": embedder.fingerprint,
        },
        "lvlm": {"name": cfg.lvlm.name, **system_manifest(cfg.lvlm)},
        "settings": cfg.rerank.model_dump(mode="json"),
        "protocol": PROTOCOL,
        "queries": {"n_selected": int(sel.size), "indices": [int(i) for i in sel]},
        "before": b,
        "after": a,
        "delta": {k: a[k] - b[k] for k in ("rank1", "rank5", "rank10", "mAP", "mINP")},
        "calls": _lvlm_accounting(answers),
        "per_query": per_query,
    }


def rerank_markdown(result: dict[str, Any]) -> str:
    """The summary table `reidbench rerank` prints and writes to rerank.md."""
    s, b, a, c = result["settings"], result["before"], result["after"], result["calls"]
    synth = " (SYNTHETIC data)" if result["dataset"]["synthetic"] else ""
    lines = [
        f"## LVLM re-ranking: {result['reid']['name']} top-{s['top_k']} re-ordered by "
        f"{result['lvlm']['name']} ({s['method']}"
        + (f", alpha {s['alpha']}" if s["method"] == "fuse" else "")
        + f"){synth}",
        "",
        f"{result['queries']['n_selected']} queries (seed {s['seed']}), "
        f"{c['pairs_judged']} pairs judged, {c['answered']} answered; "
        f"{c['calls_this_run']} calls this run, ${c['usd_this_run']:.4f} this run, "
        f"${c['usd_answers']:.4f} for all answers.",
        "",
        "| | rank-1 | rank-5 | rank-10 | mAP | mINP |",
        "|---|---|---|---|---|---|",
    ]
    keys = ("rank1", "rank5", "rank10", "mAP", "mINP")
    for label, m in (("before", b), ("after", a), ("change", result["delta"])):
        show = fmt.signed if label == "change" else fmt.num
        lines.append(f"| {label} | " + " | ".join(show(m.get(k)) for k in keys) + " |")
    paired = result.get("paired")
    if isinstance(paired, dict):
        n_q = fmt.integer(paired.get("n_queries"))
        lines += [
            "",
            f"Paired, after minus before on the same {n_q} queries (95% intervals over "
            "query identities):",
            f"- rank-1: {fmt.paired_change(paired.get('rank1'), paired.get('mcnemar'))}",
            f"- mAP: {fmt.paired_change(paired.get('mAP'))}",
        ]
    return "\n".join(lines) + "\n"
