"""Run the multiple-choice task: curate (or reuse) the items, then let every system answer.

Files, under `tasks/<name>/` of the run directory (docs/run-directory.md):
- `items.parquet`: the items with their content hash and the request that made them; a
  different request for the same folder is an error, never a silent overwrite;
- `systems/<system>.parquet`: one row per (item, repeat) with the slot answered
  (`ANSWERS_SCHEMA`), keyed by a hash of the system's settings and of the items, and
  reused once complete (nothing to retry).

ReID systems answer with the candidate of highest cosine similarity to the query (features
from the run's feature cache, shared with the pairs task); LVLM systems are asked through
the same runner, response cache and budget rules as for pairs (judges/judge.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from reidbench.errors import UserError
from reidbench.tables import read_meta, read_table, write_table
from reidbench.tasks.choice_items import (
    ChoiceItems,
    curate_choice_items,
    read_items,
    write_items,
)
from reidbench.tasks.config import ChoiceTask
from reidbench.tasks.registry import TaskContext

ORDER = "choice"  # the `order` a choice request is cached under (pairs use "ab" / "ba")
ANSWERS_SCHEMA = pa.schema(
    [
        ("item_id", pa.int64()),
        ("system", pa.string()),
        ("repeat", pa.int64()),
        ("answer", pa.int64()),  # 0-based slot named; null unless status == "ok"
        ("status", pa.string()),
        ("correct", pa.bool_()),  # ok and the true slot; every other status is wrong
        ("scores", pa.list_(pa.float64())),  # ReID: cosine similarity per candidate
        ("raw", pa.string()),
        ("reasons", pa.string()),
        ("error", pa.string()),
        ("cached", pa.bool_()),
        ("attempts", pa.int64()),
        ("cost_usd", pa.float64()),
        ("latency_s", pa.float64()),
        ("tokens_in", pa.int64()),
        ("tokens_out", pa.int64()),
    ]
)
_RETRYABLE = ("api_error", "parse_error")  # as for pairs: never cached, asked again


def _request(task: ChoiceTask) -> dict[str, Any]:
    """What the items depend on (not which systems answer them, nor the prompt)."""
    return task.model_dump(mode="json", exclude={"systems", "prompt"})


def ensure_items(ctx: TaskContext, task: ChoiceTask, name: str) -> ChoiceItems:
    """The task's items: reused when made by the same request from the same dataset."""
    from reidbench.experiment import _dataset_fp

    path = ctx.task_dir(name) / "items.parquet"
    request = _request(task)
    fingerprint = _dataset_fp(ctx.dataset)
    if path.exists():
        items = read_items(path)
        if items.meta.get("request") != request:
            raise UserError(
                f"{path}: these choice items were made with other [[tasks]] settings; use a new "
                "--out directory (or restore the settings)"
            )
        if items.meta.get("dataset_fingerprint") != fingerprint:
            raise UserError(
                f"{path}: the dataset's image list changed since these items were made; "
                "use a new --out directory"
            )
        ctx.log(f"{name}: reusing {path} ({len(items)} items)")
        return items
    miner, cache = None, None
    if task.negatives == "hard":
        if not task.hard_negatives:
            raise UserError(
                '[[tasks]] choice: negatives = "hard" needs hard_negatives = "<embedder>"'
            )
        from reidbench.models import FeatureCache, embedder_miner, load_embedder

        embedder = load_embedder(task.hard_negatives, weights=task.weights)
        cache = FeatureCache(ctx.paths.feature_cache)
        miner = embedder_miner(embedder, ctx.dataset.root, cache, progress=ctx.make_progress("img"))
    try:
        items = curate_choice_items(
            ctx.dataset,
            items=task.items,
            candidates=task.candidates,
            seed=task.seed,
            split=task.split,
            negative_miner=miner,
        )
    finally:
        if cache is not None:
            cache.close()
    items.meta["request"] = request
    items.meta["dataset_fingerprint"] = fingerprint
    items.meta["content_hash"] = write_items(path, items)
    ctx.log(f"{name}: {len(items)} items of {task.candidates} candidates written to {path}")
    return items


def run_choice(ctx: TaskContext, task: ChoiceTask, name: str) -> None:
    """Curate or reuse the items, then have each of the task's systems answer them."""
    from reidbench.config import ReIDSystemConfig
    from reidbench.rundir.paths import safe_name as _safe_name
    from reidbench.rundir.paths import settings_hash as _settings_hash

    items = ensure_items(ctx, task, name)
    wanted = task.systems or [s.name for s in ctx.cfg.systems]
    for system in (s for s in ctx.cfg.systems if s.name in wanted):
        settings = _settings_hash({"system": system.model_dump(mode="json"), "prompt": task.prompt})
        target = ctx.task_dir(name) / "systems" / f"{_safe_name(system.name)}.parquet"
        items_hash = str(items.meta["content_hash"])
        if _complete(target, settings, items_hash):
            ctx.log(f"{name}: {system.name} already complete, reusing {target}")
            continue
        if isinstance(system, ReIDSystemConfig):
            table = answer_with_embedder(system, items, ctx)
        else:
            table = answer_with_judge(system, items, task, ctx)
        write_table(target, table, {"settings": settings, "items_hash": items_hash})
        statuses = table.column("status").to_pylist()
        right = sum(bool(c) for c in table.column("correct").to_pylist())
        cached = sum(bool(c) for c in table.column("cached").to_pylist())
        from_cache = f", {cached} from the cache" if cached and system.type == "lvlm" else ""
        ctx.log(
            f"{name}: {system.name} right on {right}/{len(statuses)} "
            f"({sum(s == 'ok' for s in statuses)} answered{from_cache})"
        )


def _complete(target: Path, settings: str, items_hash: str) -> bool:
    if not target.exists():
        return False
    table = read_table(target)
    meta = read_meta(table)
    if meta.get("settings") != settings or meta.get("items_hash") != items_hash:
        return False
    return not any(s in _RETRYABLE for s in table.column("status").to_pylist())


def _argmax_slots(scores: np.ndarray, seed: int) -> np.ndarray:
    """The highest-scoring slot per item; exact ties go to a seeded random one among the
    tied slots (the first would hand ties to slot A and fake a position bias)."""
    best = scores.max(axis=1, keepdims=True)
    tied = scores == best
    u = np.random.default_rng([seed, 2508]).random(scores.shape)
    return np.argmax(np.where(tied, u + 1.0, 0.0), axis=1)


def answer_with_embedder(system: Any, items: ChoiceItems, ctx: TaskContext) -> pa.Table:
    """Each item answered by argmax cosine similarity between query and candidates."""
    from reidbench.experiment import _load_system_embedder
    from reidbench.models import FeatureCache, pair_scores

    t = items.table
    n, k = len(items), items.n_candidates
    queries = t.column("query_path").to_pylist()
    cands = t.column("cand_paths").to_pylist()
    qcams = t.column("query_cam").to_pylist()
    ccams = t.column("cand_cams").to_pylist()
    path_a = [q for q in queries for _ in range(k)]
    path_b = [c for row in cands for c in row]
    embedder = _load_system_embedder(system)
    with FeatureCache(ctx.paths.feature_cache) as cache:
        cos = pair_scores(
            embedder,
            ctx.dataset.root,
            path_a,
            path_b,
            cache=cache,
            batch_size=system.batch_size,
            progress=ctx.make_progress("img"),
            camids_a=[c for c in qcams for _ in range(k)],
            camids_b=[c for row in ccams for c in row],
        )
    scores = np.asarray(cos, dtype=np.float64).reshape(n, k)
    answer = _argmax_slots(scores, int(items.meta.get("seed", 0)))
    correct = answer == items.true_slot
    return pa.table(
        {
            "item_id": t.column("item_id"),
            "system": pa.array([system.name] * n, pa.string()),
            "repeat": pa.array(np.zeros(n, np.int64)),
            "answer": pa.array(answer.astype(np.int64)),
            "status": pa.array(["ok"] * n, pa.string()),
            "correct": pa.array(correct, pa.bool_()),
            "scores": pa.array(scores.tolist(), pa.list_(pa.float64())),
            "raw": pa.array([""] * n, pa.string()),
            "reasons": pa.nulls(n, pa.string()),
            "error": pa.nulls(n, pa.string()),
            "cached": pa.array([False] * n, pa.bool_()),
            "attempts": pa.array(np.zeros(n, np.int64)),
            "cost_usd": pa.array(np.zeros(n)),
            "latency_s": pa.nulls(n, pa.float64()),
            "tokens_in": pa.array(np.zeros(n, np.int64)),
            "tokens_out": pa.array(np.zeros(n, np.int64)),
        },
        schema=ANSWERS_SCHEMA,
    )


def check_choice(cfg: Any, task: ChoiceTask) -> None:
    """Before any call: the task's prompt is a choice prompt when an LVLM will be asked."""
    from reidbench.judges.prompts import load_prompt

    wanted = task.systems or [s.name for s in cfg.systems]
    if task.negatives == "hard" and not task.hard_negatives:
        raise UserError('[[tasks]] choice: negatives = "hard" needs hard_negatives = "<embedder>"')
    if task.negatives == "random" and task.hard_negatives:
        raise UserError(
            f'[[tasks]] choice: hard_negatives = "{task.hard_negatives}" is set but negatives = '
            '"random"; set negatives = "hard" to mine them, or drop hard_negatives'
        )
    if task.hard_negatives and not task.hard_negatives.startswith("onnx:"):
        from reidbench.models import list_embedders

        if task.hard_negatives not in list_embedders():
            raise UserError(
                f"[[tasks]] choice: unknown miner hard_negatives = {task.hard_negatives!r}; "
                f"use one of {', '.join(list_embedders())} or onnx:PATH"
            )
    if not any(s.type == "lvlm" and s.name in wanted for s in cfg.systems):
        return
    if load_prompt(task.prompt).answer != "choice":
        raise UserError(
            f"[[tasks]] choice: prompt {task.prompt!r} does not ask for a candidate (answer = "
            '"choice"); use the bundled prompt "choice" or a prompt file like it'
        )


def resolve_for_items(system: Any, prompt: str, labels: list[str]) -> Any:
    """The LVLM system with the task's prompt, filled in for these candidate labels."""
    from reidbench.judges.settings import resolve_system

    resolved = resolve_system(system.model_copy(update={"prompt": prompt}))
    if resolved.prompt.answer != "choice":
        raise UserError(
            f"[[tasks]] choice: prompt {prompt!r} does not ask for a candidate (answer = "
            '"choice"); use the bundled prompt "choice" or a prompt file like it'
        )
    return dataclasses.replace(resolved, prompt=resolved.prompt.for_options(labels))


def plan_choice_jobs(resolved: Any, items: ChoiceItems, root: Path, cache: Any) -> list[Any]:
    """One job per (item, repeat): the query, then the candidates in slot order."""
    from reidbench.judges.judge import _file_hashes
    from reidbench.judges.runner import Job, derivation_key, request_key

    t = items.table
    labels = ("Q", *items.labels())
    queries = t.column("query_path").to_pylist()
    cands = t.column("cand_paths").to_pylist()
    hashes = _file_hashes(Path(root), set(queries) | {c for row in cands for c in row})
    spec = resolved.image_spec
    jobs: list[Job] = []
    for item_id, query, row in zip(t.column("item_id").to_pylist(), queries, cands, strict=True):
        paths = (query, *row)
        if spec.mode == "composite":
            sources = [hashes[p] for p in paths] + ["labels:" + ",".join(labels)]
            derivs = [derivation_key(sources, spec)]
        else:
            derivs = [derivation_key([hashes[p]], spec) for p in paths]
        for repeat in range(resolved.config.repeats):
            jobs.append(
                Job(
                    len(jobs),
                    int(item_id),
                    query,
                    row[0],
                    ORDER,
                    repeat,
                    derivs,
                    paths=paths,
                    labels=labels,
                )
            )
    known = cache.sent_shas(d for job in jobs for d in job.derivations)
    for job in jobs:
        if all(d in known for d in job.derivations):
            sent = [h for d in job.derivations for h in known[d]]
            job.key = request_key(resolved, sent, job.order, job.repeat)
    return jobs


def answer_with_judge(system: Any, items: ChoiceItems, task: ChoiceTask, ctx: TaskContext):
    """Each item (x repeat) asked of an LVLM; answers committed to the response cache."""
    from reidbench.judges.cache import ResponseCache
    from reidbench.judges.claims import DEFAULT_LEASE_S
    from reidbench.judges.judge import answer_jobs

    resolved = resolve_for_items(system, task.prompt, items.labels())
    paths = ctx.paths
    lease = DEFAULT_LEASE_S if paths.claim_lease_s is None else paths.claim_lease_s
    root = Path(ctx.dataset.root)
    with ResponseCache(paths.response_cache, claim_lease_s=lease) as cache:
        jobs = plan_choice_jobs(resolved, items, root, cache)
        results = asyncio.run(
            answer_jobs(
                resolved,
                jobs,
                root,
                cache,
                progress=ctx.make_progress("call"),
                environ=ctx.environ,
                stopped=paths.stopped,
            )
        )
    truth = dict(
        zip(items.table.column("item_id").to_pylist(), items.true_slot.tolist(), strict=True)
    )
    rows = []
    for job in jobs:
        r = results[job.index]
        answer = r.choice if r.status == "ok" else None
        rows.append(
            {
                "item_id": job.pair_id,
                "system": system.name,
                "repeat": job.repeat,
                "answer": answer,
                "status": r.status,
                "correct": answer is not None and answer == truth[job.pair_id],
                "scores": None,
                "raw": r.raw,
                "reasons": r.reasons,
                "error": r.error,
                "cached": r.cached,
                "attempts": r.attempts,
                "cost_usd": r.cost_usd,
                "latency_s": r.latency_s,
                "tokens_in": r.tokens_in,
                "tokens_out": r.tokens_out,
            }
        )
    return pa.Table.from_pylist(rows, schema=ANSWERS_SCHEMA)
