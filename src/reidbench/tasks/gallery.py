"""The gallery-ranking task (VP-ReID's QGM, arXiv 2508.06908): each query against its own gallery.

For Q queries drawn from the split's query side, each gets its own gallery of G images:
its true matches from other cameras (torchreid protocol: same-identity same-camera
images are never in the gallery) plus other identities, seeded and shuffled. Every
system scores every (query, gallery image) pair: an embedder by the cosine of its cached
features, an LVLM through the pair-judging machinery (its prompt, its response cache,
so a killed run resumes and a finished one is answered from the cache). Before any LVLM
call, the cost of the calls not yet cached is estimated; a run whose estimate does not
fit the system's `max_calls` / `max_cost_usd` is refused (exit 2), with the estimate.

Files, under `RUN/tasks/gallery/` (docs/tasks.md):
- `items.parquet`: one row per (query, gallery image), pair-table columns plus `query`
  and `slot`; its metadata holds the request, the dataset fingerprint and a content hash.
  A re-run with the same request reuses it; another request is refused.
- `systems/<name>.parquet`: one scores row per item (x order x repeat), `SCORES_SCHEMA`,
  reused when made with the same system settings and items.
- `manifest.json`: which systems ran and their scales (what `gallery_metrics` reads).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from reidbench.config import LVLMSystemConfig, ReIDSystemConfig, SystemConfig
from reidbench.errors import UserError
from reidbench.files import write_json_atomic
from reidbench.pairs.rng import StableRng
from reidbench.progress import Log, ProgressFactory, no_log
from reidbench.tables import read_meta, read_table, write_table
from reidbench.tasks.config import GalleryTask

if TYPE_CHECKING:
    from reidbench.config import ExperimentConfig
    from reidbench.datasets import Dataset

ITEMS_FORMAT = "reidbench-gallery/1"
_HASH_DOMAIN = b"reidbench-gallery-v1\n"
# Statuses a re-run asks again (never cached): a system holding one is not complete.
_RETRYABLE = ("api_error", "parse_error")

ITEMS_SCHEMA = pa.schema(
    [
        ("pair_id", pa.int64()),  # row index: the id judge_pairs and pair_scores key on
        ("query", pa.int64()),  # 0..Q-1
        ("slot", pa.int64()),  # position in the query's (shuffled) gallery, 0..G-1
        ("path_a", pa.string()),  # the query image
        ("path_b", pa.string()),  # the gallery image
        ("pid_a", pa.int64()),
        ("pid_b", pa.int64()),
        ("cam_a", pa.int64()),
        ("cam_b", pa.int64()),
        ("label", pa.int8()),  # 1: a true match of the query
    ]
)


def gallery_name(index: int) -> str:
    """Folder / metrics key of the index-th gallery task of a run: gallery, gallery-2, ..."""
    return "gallery" if index == 0 else f"gallery-{index + 1}"


def task_dir(run_dir: Path, name: str = "gallery") -> Path:
    """Where a gallery task keeps its files (`name`: one folder per gallery task)."""
    return Path(run_dir) / "tasks" / name


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _settings_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- curation


def request_of(task: GalleryTask) -> dict[str, Any]:
    """What determines the items (the systems do not)."""
    return task.model_dump(mode="json", exclude={"systems"})


def items_hash(table: pa.Table) -> str:
    """sha256 over the item columns in row order (domain line, row count, then per column
    its name and its values: integers as little-endian int64, strings length-prefixed)."""
    h = hashlib.sha256(_HASH_DOMAIN)
    h.update(np.int64(table.num_rows).astype("<i8").tobytes())
    for field in ITEMS_SCHEMA:
        col = table.column(field.name)
        h.update(field.name.encode() + b"\n")
        if pa.types.is_string(field.type):
            encoded = [s.encode("utf-8") for s in col.to_pylist()]
            h.update(np.array([len(e) for e in encoded], dtype="<i8").tobytes())
            h.update(b"".join(encoded))
        else:
            h.update(np.asarray(col.to_numpy(), dtype="<i8").tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class GalleryItems:
    """The curated items (`ITEMS_SCHEMA`) and their provenance."""

    table: pa.Table
    meta: dict[str, Any]

    @property
    def content_hash(self) -> str:
        return str(self.meta["content_hash"])


def curate_gallery(dataset: Dataset, task: GalleryTask) -> GalleryItems:
    """Q queries with a true cross-camera match, each with its own shuffled gallery of G images.

    A gallery holds the query's true matches from other cameras (at most G // 2 of them,
    a seeded sample when there are more, so every gallery has negatives) and G - P images
    of other identities, drawn uniformly. Each query draws from its own stream keyed by
    its path, so asking for more queries keeps the earlier queries' galleries.
    """
    from reidbench.pairs.pools import build_pools

    pools = build_pools(dataset, task.split, same_camera=False, distractors=False)
    a, b = pools.a, pools.b
    G = task.gallery_size
    cap = max(1, G // 2)
    by_pid: dict[int, np.ndarray] = {}
    order = np.argsort(b.pid, kind="stable")
    pids, starts = np.unique(b.pid[order], return_index=True)
    for p, chunk in zip(pids, np.split(order, starts[1:]), strict=True):
        by_pid[int(p)] = chunk
    eligible = []
    for i in range(len(a)):
        same = by_pid.get(int(a.pid[i]), np.zeros(0, np.int64))
        matches = same[b.cam[same] != a.cam[i]]
        if matches.size and len(b) - same.size >= G - min(matches.size, cap):
            eligible.append(i)
    if len(eligible) < task.queries:
        raise UserError(
            f"{dataset.root}: gallery task asks for {task.queries} queries, but the "
            f"{task.split} split has {len(eligible)} with a true match from another camera "
            f"and enough other images for a gallery of {G}; lower queries or gallery_size"
        )
    chosen = np.asarray(eligible)[
        StableRng(task.seed, "gallery/queries").sample(len(eligible), task.queries)
    ]
    cols: dict[str, list[Any]] = {f.name: [] for f in ITEMS_SCHEMA}
    capped = 0
    for q, i in enumerate(chosen):
        rng = StableRng(task.seed, "gallery/query/" + a.records[i].path)
        same = by_pid[int(a.pid[i])]
        matches = same[b.cam[same] != a.cam[i]]
        if matches.size > cap:
            capped += 1
            matches = np.sort(matches[rng.sample(matches.size, cap)])
        others = np.flatnonzero(b.pid != a.pid[i])
        negatives = np.sort(others[rng.sample(others.size, G - matches.size)])
        gallery = np.concatenate([matches, negatives])[rng.permutation(G)]
        for slot, j in enumerate(gallery):
            cols["pair_id"].append(len(cols["pair_id"]))
            cols["query"].append(q)
            cols["slot"].append(slot)
            cols["path_a"].append(a.records[i].path)
            cols["path_b"].append(b.records[j].path)
            cols["pid_a"].append(int(a.pid[i]))
            cols["pid_b"].append(int(b.pid[j]))
            cols["cam_a"].append(int(a.cam[i]))
            cols["cam_b"].append(int(b.cam[j]))
            cols["label"].append(int(b.pid[j] == a.pid[i]))
    table = pa.table(cols, schema=ITEMS_SCHEMA)
    meta = {
        "format": ITEMS_FORMAT,
        "request": request_of(task),
        "content_hash": items_hash(table),
        "n_queries": task.queries,
        "gallery_size": G,
        "max_true_matches": cap,
        "queries_with_capped_matches": capped,
        "eligible_queries": len(eligible),
        "rule": "true matches from other cameras (same-id same-camera excluded), "
        "others from other identities, order shuffled",
    }
    return GalleryItems(table, meta)


def read_items(path: Path) -> GalleryItems:
    table = read_table(path)
    meta = read_meta(table)
    if meta.get("format") != ITEMS_FORMAT or items_hash(table) != meta.get("content_hash"):
        raise UserError(
            f"{path}: not a gallery item file this reidbench wrote, or changed since "
            "(content hash differs); delete it to curate again"
        )
    return GalleryItems(table, meta)


def ensure_items(
    dataset: Dataset, task: GalleryTask, folder: Path, *, log: Log = no_log
) -> GalleryItems:
    """The task's items: reused when made from this request and dataset, else curated."""
    from reidbench.experiment import _dataset_fp  # one definition of the image-list identity

    path = folder / "items.parquet"
    fingerprint = _dataset_fp(dataset)
    if path.exists():
        items = read_items(path)
        if items.meta.get("request") != request_of(task):
            raise UserError(
                f"{path}: this run directory holds gallery items made with other settings "
                f"({items.meta.get('request')}); use a new --out directory or restore them"
            )
        if items.meta.get("dataset_fingerprint") != fingerprint:
            raise UserError(
                f"{path}: the dataset's image list changed since the gallery items were made; "
                "use a new --out directory"
            )
        log(f"gallery: reusing {path} ({items.table.num_rows} items)")
        return items
    items = curate_gallery(dataset, task)
    items.meta["dataset_fingerprint"] = fingerprint
    write_table(path, items.table, items.meta)
    log(
        f"gallery: {task.queries} queries x {task.gallery_size} images written to {path} "
        f"(hash {items.content_hash[:12]})"
    )
    return items


# --------------------------------------------------------------------------- cost


class _NoCache:
    """An empty response cache that creates no file (`plan_jobs` asks it for known images)."""

    def sent_shas(self, derivations: Any) -> dict[str, list[str]]:
        return {}


@dataclass(frozen=True)
class CostEstimate:
    """What an LVLM system would still pay for the task's items."""

    system: str
    calls: int  # requests the task needs (items x orders x repeats)
    cached: int  # already answered in the response cache
    new: int  # distinct requests still to send
    tokens_in: int  # estimated input tokens per call (generous: the runner's reservation)
    max_tokens: int
    usd_new: float | None  # upper estimate for the new calls; None without prices
    usd_cached: float  # what the cached answers cost

    def line(self) -> str:
        usd = "no price known" if self.usd_new is None else f"about ${self.usd_new:.4f} at most"
        return (
            f"{self.new} new calls of {self.calls} ({self.cached} cached), {usd} "
            f"({self.tokens_in} tokens in + {self.max_tokens} out per call)"
        )


def estimate_cost(
    system: LVLMSystemConfig, items: pa.Table, root: Path, cache_path: Path
) -> CostEstimate:
    """Estimate the cost of the uncached calls, before any call (and without decoding images).

    Cached requests are found as `judge_pairs` finds them (keys from the file hashes and
    recorded derivations). Each new call is priced like the runner's budget reservation:
    `estimate_tokens_in` for the prompt and images at `image_size` on both sides, plus
    `max_tokens` out, at the system's prices (preset or config).
    """
    from reidbench.judges.cache import ResponseCache
    from reidbench.judges.images import EncodedImage
    from reidbench.judges.judge import plan_jobs
    from reidbench.judges.runner import estimate_tokens_in
    from reidbench.judges.settings import resolve_system

    resolved = resolve_system(system)
    if cache_path.is_file():
        with ResponseCache(cache_path) as cache:
            jobs = plan_jobs(resolved, items, Path(root), cache)
            hits = cache.get_many(j.key for j in jobs if j.key is not None)
    else:  # nothing cached yet; and a pre-flight creates no file
        jobs = plan_jobs(resolved, items, Path(root), _NoCache())  # type: ignore[arg-type]
        hits = {}
    pending = {
        (tuple(j.derivations), j.order, j.repeat)
        for j in jobs
        if j.key is None or j.key not in hits
    }
    cached = sum(1 for j in jobs if j.key is not None and j.key in hits)
    size = resolved.image_spec.size
    if resolved.image_spec.mode == "composite":
        images = [EncodedImage(b"", "image/jpeg", 2 * size, size)]
    else:
        images = [EncodedImage(b"", "image/jpeg", size, size)] * 2
    text = resolved.prompt.system + resolved.prompt.user_text(resolved.image_spec.mode)
    est_in = estimate_tokens_in(text, images)
    per_call = resolved.cost(est_in, system.max_tokens)
    return CostEstimate(
        system=system.name,
        calls=len(jobs),
        cached=cached,
        new=len(pending),
        tokens_in=est_in,
        max_tokens=system.max_tokens,
        usd_new=None if per_call is None else per_call * len(pending),
        usd_cached=sum(float(h.cost_usd or 0.0) for h in hits.values()),
    )


def check_budget(est: CostEstimate, system: LVLMSystemConfig, task: GalleryTask) -> None:
    """Refuse (UserError, exit 2) when the estimate does not fit the system's caps.

    The caps count this task's answers, cached ones included, as the runner counts them."""
    size = f"{task.queries} queries x {task.gallery_size} images"
    fix = "raise the cap, or lower the task's queries or gallery_size"
    if system.max_calls is not None and est.cached + est.new > system.max_calls:
        raise UserError(
            f"gallery task ({size}), system {system.name!r}: {est.line()}; over its "
            f"max_calls={system.max_calls}; {fix}"
        )
    if system.max_cost_usd is not None and (
        est.usd_new is None or est.usd_cached + est.usd_new > system.max_cost_usd
    ):
        raise UserError(
            f"gallery task ({size}), system {system.name!r}: {est.line()}; over its "
            f"max_cost_usd={system.max_cost_usd:g} (${est.usd_cached:.4f} already spent); {fix}"
        )


# --------------------------------------------------------------------------- scoring


def gallery_preflight(
    cfg: ExperimentConfig, run_dir: Path, *, dataset: Dataset | None = None, log: Log = no_log
) -> None:
    """Before a run writes anything: check every gallery task's system names and refuse when
    an LVLM's estimated cost does not fit its caps (the run then leaves no folder behind).

    Items already in `run_dir` are used when made from the same request; otherwise they are
    curated in memory only (the run curates them again, identically, and writes them)."""
    from reidbench.rundir.paths import RunPaths

    tasks = [t for t in cfg.tasks if isinstance(t, GalleryTask)]
    paths = RunPaths(Path(run_dir), shared_responses=cfg.cache.responses)
    for i, task in enumerate(tasks):
        lvlms = [s for s in task_systems(cfg, task) if isinstance(s, LVLMSystemConfig)]
        if not lvlms:
            continue
        dataset = dataset if dataset is not None else cfg.dataset.load()
        folder = task_dir(paths.out, gallery_name(i))
        path = folder / "items.parquet"
        items = read_items(path) if path.is_file() else None
        if items is None or items.meta.get("request") != request_of(task):
            items = curate_gallery(dataset, task)
        for system in lvlms:
            target = folder / "systems" / f"{_safe(system.name)}.parquet"
            settings = _settings_hash(system.model_dump(mode="json"))
            if _reusable(target, settings, items.content_hash) is not None:
                continue
            est = estimate_cost(system, items.table, dataset.root, paths.response_cache)
            log(f"pre-flight: gallery {system.name}: {est.line()}")
            check_budget(est, system, task)


def task_systems(cfg: ExperimentConfig, task: GalleryTask) -> list[SystemConfig]:
    """The systems a task asks (all of the run's when `systems` is unset)."""
    if task.systems is None:
        return list(cfg.systems)
    known = {s.name: s for s in cfg.systems}
    unknown = [n for n in task.systems if n not in known]
    if unknown:
        raise UserError(
            f"[[tasks]] gallery: systems {unknown} are not among the run's [[systems]] "
            f"({', '.join(known)}); fix the names"
        )
    return [known[n] for n in task.systems]


def _reusable(target: Path, settings: str, content_hash: str) -> pa.Table | None:
    if not target.exists():
        return None
    table = read_table(target)
    meta = read_meta(table)
    if meta.get("settings") != settings or meta.get("items_hash") != content_hash:
        return None
    if any(s in _RETRYABLE for s in table.column("status").to_pylist()):
        return None
    return table


def run_gallery(
    cfg: ExperimentConfig,
    task: GalleryTask,
    run_dir: Path,
    *,
    dataset: Dataset | None = None,
    name: str = "gallery",
    progress: ProgressFactory | None = None,
    log: Log = no_log,
    environ: Mapping[str, str] | None = None,
    stopped: list[str] | None = None,
) -> Path:
    """Curate (or reuse) the items, check every LVLM's cost, then score with every system.

    Returns the task folder. A stopped LVLM (circuit breaker) has its reason appended to
    `stopped`, as for the pairs task.
    """
    from reidbench.experiment import RunPaths, _score_with_embedder, _score_with_judge

    environ = os.environ if environ is None else environ
    make_progress: ProgressFactory = progress or (lambda _unit: None)
    systems = task_systems(cfg, task)
    dataset = dataset if dataset is not None else cfg.dataset.load()
    paths = RunPaths(
        Path(run_dir), shared_responses=cfg.cache.responses, claim_lease_s=cfg.cache.claim_lease_s
    )
    if stopped is not None:
        paths.stopped = stopped
    folder = task_dir(paths.out, name)
    items = ensure_items(dataset, task, folder, log=log)
    pairs = items.table

    plans: dict[str, str] = {}
    for system in systems:  # every estimate before any call
        settings = _settings_hash(system.model_dump(mode="json"))
        plans[system.name] = settings
        target = folder / "systems" / f"{_safe(system.name)}.parquet"
        if (
            isinstance(system, LVLMSystemConfig)
            and _reusable(target, settings, items.content_hash) is None
        ):
            est = estimate_cost(system, pairs, dataset.root, paths.response_cache)
            log(f"gallery {system.name}: {est.line()}")
            check_budget(est, system, task)

    entries = []
    for system in systems:
        target = folder / "systems" / f"{_safe(system.name)}.parquet"
        settings = plans[system.name]
        if _reusable(target, settings, items.content_hash) is not None:
            log(f"gallery {system.name}: already complete, reusing {target}")
        else:
            if isinstance(system, ReIDSystemConfig):
                table, fingerprint, _pin = _score_with_embedder(
                    system, dataset, pairs, paths, make_progress
                )
            else:
                table, fingerprint = _score_with_judge(
                    system, dataset, pairs, paths, make_progress, environ
                )
            meta = {
                "settings": settings,
                "items_hash": items.content_hash,
                "fingerprint": fingerprint,
            }
            write_table(target, table, meta)
            ok = sum(1 for s in table.column("status").to_pylist() if s == "ok")
            log(f"gallery {system.name}: {ok}/{table.num_rows} scored")
        entries.append(
            {
                "name": system.name,
                "type": system.type,
                "file": f"systems/{target.name}",
                "scale": 1.0 if isinstance(system, ReIDSystemConfig) else 100.0,
            }
        )
    write_json_atomic(
        folder / "manifest.json",
        {
            "kind": "gallery",
            "task": task.model_dump(mode="json"),
            "items_hash": items.content_hash,
            "systems": entries,
        },
    )
    return folder


def item_scores(items: pa.Table, scores: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(score, answered) per item: the mean over a system's ok rows (orders x repeats) of
    that item; an item with no ok row is unanswered (score NaN)."""
    n = items.num_rows
    ids = np.asarray(scores.column("pair_id").to_numpy(zero_copy_only=False), dtype=np.int64)
    ok = np.array([s == "ok" for s in scores.column("status").to_pylist()], dtype=bool)
    raw = scores.column("score").to_pylist()
    val = np.array([math.nan if v is None else float(v) for v in raw], dtype=np.float64)
    ok &= np.isfinite(val)
    total = np.bincount(ids[ok], weights=val[ok], minlength=n)[:n]
    count = np.bincount(ids[ok], minlength=n)[:n]
    answered = count > 0
    score = np.full(n, math.nan)
    score[answered] = total[answered] / count[answered]
    return score, answered
