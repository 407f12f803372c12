"""Drive one experiment: dataset -> pairs -> systems -> scores -> metrics -> report.

Resumable by construction. Every stage writes its output atomically and checks
what is already in the run directory before doing work:
- `pairs.parquet` is reused when it was made from the same dataset and pair rules
  (a different request is an error, never a silent overwrite);
- each system's rows go to `systems/<name>.parquet` once the system is complete,
  keyed by a hash of its settings, so a finished system is not recomputed;
- inside a system, LVLM answers are committed one by one to the response cache
  and embedder features to the feature cache, so a killed run loses only the
  calls that were in flight.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from reidbench import __version__
from reidbench.config import ExperimentConfig, LVLMSystemConfig, ReIDSystemConfig, SystemConfig
from reidbench.datasets import Dataset
from reidbench.engine import current_engine
from reidbench.engine import session as engine_session
from reidbench.errors import UserError
from reidbench.files import write_json_atomic
from reidbench.progress import Log, ProgressFactory, no_log
from reidbench.records import RUN_SCHEMA_VERSION, checked_manifest
from reidbench.rundir.lock import hold_run_dir, refuse_if_held
from reidbench.rundir.paths import RunPaths
from reidbench.rundir.paths import settings_hash as _settings_hash
from reidbench.tables import SCORES_SCHEMA, read_meta, read_table, write_table
from reidbench.tasks.registry import TaskContext, check_tasks, run_tasks, tasks_preflight


def run_experiment(
    cfg: ExperimentConfig,
    out: Path,
    *,
    progress: ProgressFactory | None = None,
    log: Log = no_log,
    environ: Mapping[str, str] | None = None,
    write_outputs: bool = True,
    preflight: bool = True,
    relink: bool = False,
) -> RunPaths:
    """Run (or resume) an experiment into `out`; returns the run's paths.

    `preflight`: check config, keys, weights and endpoints first (reidbench.preflight);
    `paths.stopped` lists systems the circuit breaker stopped (the CLI exits 3);
    `relink`: keep the stored pairs although the dataset's image list changed (e.g. moved to
    a new root), as long as every image they use is there."""
    if cfg.engine.kind != "local" and current_engine() is None:
        with engine_session(cfg.engine.kind, cfg.engine.address):  # `[engine]` of the config
            return run_experiment(
                cfg,
                out,
                progress=progress,
                log=log,
                environ=environ,
                write_outputs=write_outputs,
                preflight=preflight,
                relink=relink,
            )
    environ = os.environ if environ is None else environ
    make_progress: ProgressFactory = progress or (lambda _unit: None)
    paths = RunPaths(
        Path(out), shared_responses=cfg.cache.responses, claim_lease_s=cfg.cache.claim_lease_s
    )
    if cfg.fusion is not None or cfg.cascade is not None:
        from reidbench.config import check_fusion_references

        check_fusion_references(cfg)  # before anything is paid for
    check_tasks(cfg)
    refuse_if_held(paths.out)  # another live run here: say so before probing anything
    if preflight:
        from reidbench.preflight import experiment_preflight

        experiment_preflight(cfg, paths.out, environ, log=log)
        tasks_preflight(cfg, paths.out, log=log)  # e.g. a gallery task's LVLM cost
    # One writer per run directory (docs/run-directory.md), from the first file written:
    # after the pre-flight, so a refused run leaves no folder behind.
    with hold_run_dir(paths.out, log=log):
        return _run(cfg, paths, make_progress, log, environ, write_outputs, relink)


def _run(cfg, paths, make_progress, log, environ, write_outputs, relink) -> RunPaths:
    dataset = cfg.dataset.load()
    log(f"dataset: {dataset.name} at {dataset.root}{' (SYNTHETIC)' if dataset.synthetic else ''}")
    pairset = _ensure_pairs(cfg, dataset, paths, make_progress, log, relink=relink)
    pairs = pairset.table

    manifest = _manifest(cfg, dataset, pairset.meta)
    write_json_atomic(paths.manifest, checked_manifest(manifest))
    from reidbench.judges.attribute_answers import record_attribute_truth

    record_attribute_truth(cfg.systems, dataset, paths.out, log=log)  # docs/tasks.md

    live = cfg.cascade if cfg.cascade is not None and cfg.cascade.live else None
    for system in cfg.systems:
        if live is not None and system.name == live.lvlm:
            continue  # asked below, only about the pairs in the cascade's band
        _ensure_system(system, dataset, pairs, paths, make_progress, log, environ, manifest)
    if live is not None:
        _ensure_live_cascade(cfg, dataset, pairs, paths, make_progress, log, environ, manifest)
    write_json_atomic(paths.manifest, checked_manifest(manifest))  # now with fingerprints filled in
    _merge_scores(cfg, paths)
    if cfg.fusion is not None or cfg.cascade is not None:
        _ensure_fusions(cfg, paths, log)

    if cfg.retrieval:
        _ensure_retrieval(cfg, dataset, paths, make_progress, log)
    run_tasks(TaskContext(cfg, dataset, paths, make_progress, log, environ))  # [[tasks]]

    if write_outputs:
        write_run_outputs(paths.out, log=log)
    return paths


def write_run_outputs(run_dir: Path, *, log: Log = no_log) -> str:
    """Write metrics.json, report.html and summary.md; return the Markdown summary."""
    from reidbench.metrics.run import write_metrics
    from reidbench.report import write_report
    from reidbench.rundir import open_run

    metrics = write_metrics(open_run(run_dir))  # read and verified once (docs/run-directory.md)
    summary = write_report(run_dir, metrics)
    log(f"wrote {run_dir / 'metrics.json'} and {run_dir / 'report.html'}")
    return summary


# --- stages -----------------------------------------------------------------


def _pair_request(cfg: ExperimentConfig) -> dict[str, Any]:
    request = cfg.pairs.model_dump(mode="json")
    # Miner settings added later are recorded only when set, so older run directories resume.
    for key, default in (("weights", None), ("hard_fraction", 0.5), ("device", "auto")):
        if request.get(key) == default:
            request.pop(key)
    return request


def _ensure_pairs(cfg, dataset, paths: RunPaths, make_progress, log, relink: bool = False):
    from reidbench.pairs import curate_pairs, read_pairs, write_pairs

    request = _pair_request(cfg)
    if paths.pairs.exists():
        existing = read_pairs(paths.pairs)
        made_from = existing.meta.get("request")
        if made_from != request:
            raise UserError(
                f"{paths.pairs}: this run directory holds pairs made with other pair "
                "settings; use a new --out directory (or restore the [pairs] settings)"
            )
        fingerprint = _dataset_fp(dataset)
        if existing.meta.get("dataset_fingerprint") != fingerprint:
            _check_relink(existing.table, dataset, paths, relink)
            existing.meta["dataset_fingerprint"] = fingerprint
            existing.meta.setdefault("relinked", []).append(str(dataset.root))
            write_pairs(paths.pairs, existing)
            log(f"pairs: relinked {paths.pairs} to the images in {dataset.root}")
        log(f"pairs: reusing {paths.pairs} ({existing.table.num_rows} pairs)")
        return existing

    p = cfg.pairs
    miner = None
    if p.hard_negatives:
        from reidbench.models import FeatureCache, embedder_miner, load_embedder

        embedder = load_embedder(p.hard_negatives, weights=p.weights, device=p.device)
        cache = FeatureCache(paths.feature_cache)
        miner = embedder_miner(embedder, dataset.root, cache, progress=make_progress("img"))
    try:
        pairset = curate_pairs(
            dataset,
            positives=p.positives,
            negatives=p.negatives,
            seed=p.seed,
            split=p.split,
            same_camera_positives=p.same_camera_positives,
            distractor_negatives=p.distractor_negatives,
            triplets=p.triplets,
            negative_miner=miner,
            hard_fraction=p.hard_fraction,
        )
    finally:
        if miner is not None:
            cache.close()
    pairset.meta["request"] = request
    pairset.meta["dataset_fingerprint"] = _dataset_fp(dataset)
    write_pairs(paths.pairs, pairset)
    log(f"pairs: {pairset.table.num_rows} pairs written to {paths.pairs}")
    return pairset


def _check_relink(pairs: pa.Table, dataset: Dataset, paths: RunPaths, relink: bool) -> None:
    """The dataset's image list changed since the pairs were made: name a missing image, or
    accept the change only when asked (--relink). Paid answers stay in cache/ either way:
    the response cache is keyed by image content, not by path."""
    used = sorted(set(pairs.column("path_a").to_pylist()) | set(pairs.column("path_b").to_pylist()))
    missing = [p for p in used if not (Path(dataset.root) / p).is_file()]
    keep = f"the paid answers in {paths.cache_dir} are kept and reused either way"
    if missing:
        raise UserError(
            f"{Path(dataset.root) / missing[0]}: image used by the stored pairs is missing "
            f"({len(missing)} missing); restore it, or pass --relink DATA with a folder that "
            f"holds the images; {keep}"
        )
    if not relink:
        raise UserError(
            f"{dataset.root}: the dataset's image list changed since {paths.pairs} was made "
            f"(every image the pairs use is still there); pass --relink {dataset.root} to keep "
            f"these pairs, or use a new --out; {keep}"
        )


def _dataset_fp(dataset: Dataset) -> str:
    """Identity of the image list (names, pids, cameras), independent of its location."""
    h = hashlib.sha256()
    for split in ("train", "query", "gallery"):
        for r in dataset.split(split):
            h.update(f"{split}\t{r.path}\t{r.pid}\t{r.camid}\n".encode())
    return h.hexdigest()[:16]


def _manifest(cfg: ExperimentConfig, dataset: Dataset, pairs_meta: dict[str, Any]) -> dict:
    return {
        "schema_version": RUN_SCHEMA_VERSION,  # reidbench.records: typed, migrated on read
        "reidbench_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": cfg.model_dump(mode="json"),
        "dataset": dataset.info(),
        "pairs": pairs_meta,
        "systems": [_system_entry(s) for s in cfg.systems],
    }


def _system_entry(system: SystemConfig) -> dict[str, Any]:
    if isinstance(system, ReIDSystemConfig):
        return {
            "name": system.name,
            "type": "reid",
            "model": system.model,
            "weights": system.weights,
            "fingerprint": None,
            "scale": 1.0,
            "threshold": system.threshold,
        }
    from reidbench.judges import system_manifest

    entry = {"name": system.name, "type": "lvlm", "scale": 100.0, "threshold": system.threshold}
    entry.update(system_manifest(system))
    return entry


def _ensure_system(system, dataset, pairs, paths, make_progress, log, environ, manifest) -> None:
    from reidbench.judges.served import record_served, served_meta

    settings = _settings_hash(system.model_dump(mode="json"))
    target = paths.system_scores(system.name)
    stored = _reusable(target, settings, pairs)
    if stored is not None:
        log(f"{system.name}: already complete, reusing {target}")
        stored_meta = read_meta(stored)
        _record_fingerprint(manifest, system.name, stored_meta.get("fingerprint"))
        _record_weights_pin(manifest, system.name, stored_meta.get("weights_pin"))
        record_served(manifest, system.name, stored_meta)
        return
    n_stopped = len(paths.stopped)
    pin = None
    if isinstance(system, ReIDSystemConfig):
        table, fingerprint, pin = _score_with_embedder(system, dataset, pairs, paths, make_progress)
    else:
        table, fingerprint = _score_with_judge(
            system, dataset, pairs, paths, make_progress, environ
        )
    meta = {"settings": settings, "pairs_hash": _pairs_hash(pairs), "fingerprint": fingerprint}
    meta.update(served_meta(table))  # which model versions answered (LVLMs)
    if pin:
        meta["weights_pin"] = pin
    write_table(target, table, meta)
    _record_fingerprint(manifest, system.name, fingerprint)
    _record_weights_pin(manifest, system.name, pin)
    record_served(manifest, system.name, meta)
    statuses = table.column("status").to_pylist()
    ok = sum(1 for s in statuses if s == "ok")
    cached = sum(1 for c in table.column("cached").to_pylist() if c)
    from_cache = f" ({cached} from the cache)" if cached and system.type == "lvlm" else ""
    log(f"{system.name}: {ok}/{len(statuses)} answered{from_cache}")
    for reason in paths.stopped[n_stopped:]:
        log(f"STOPPED {reason}")


# Statuses a re-run should try again (they are never cached): a system holding any of
# them is not "complete", so the next run asks those pairs again.
_RETRYABLE = ("api_error", "parse_error")


def _reusable(target: Path, settings: str, pairs: pa.Table) -> pa.Table | None:
    """A system's stored rows, if made with these settings and pairs and nothing to retry."""
    if not target.exists():
        return None
    table = read_table(target)
    meta = read_meta(table)
    if meta.get("settings") != settings or meta.get("pairs_hash") != _pairs_hash(pairs):
        return None
    if any(s in _RETRYABLE for s in table.column("status").to_pylist()):
        return None
    return table


def _record_fingerprint(manifest: dict, name: str, fingerprint: str | None) -> None:
    for entry in manifest["systems"]:
        if entry["name"] == name and fingerprint:
            entry["fingerprint"] = fingerprint


def _record_weights_pin(manifest: dict, name: str, pin: str | None) -> None:
    """The exact weights an embedder used (hf://...@COMMIT#sha256=... or URL#sha256=...)."""
    for entry in manifest["systems"]:
        if entry["name"] == name and pin:
            entry["weights_pin"] = pin


def _load_system_embedder(system: ReIDSystemConfig):
    from reidbench.models import load_embedder

    return load_embedder(
        system.model,
        weights=system.weights,
        device=system.device,
        require_pinned=system.require_pinned,
        **system.options,
    )


def _pairs_hash(pairs: pa.Table) -> str:
    from reidbench.pairs import pairset_hash

    return pairset_hash(pairs)


def _pair_camids(pairs: pa.Table) -> dict[str, list[int]]:
    """Camera ids of each pair's images, for camera-aware (SIE) embedders."""
    if "cam_a" not in pairs.column_names or "cam_b" not in pairs.column_names:
        return {}
    return {
        "camids_a": pairs.column("cam_a").to_pylist(),
        "camids_b": pairs.column("cam_b").to_pylist(),
    }


def _score_with_embedder(system: ReIDSystemConfig, dataset, pairs, paths, make_progress):
    from reidbench.models import FeatureCache, cosine_to_unit, pair_scores

    embedder = _load_system_embedder(system)
    with FeatureCache(paths.feature_cache) as cache:
        cos = pair_scores(
            embedder,
            dataset.root,
            pairs.column("path_a").to_pylist(),
            pairs.column("path_b").to_pylist(),
            cache=cache,
            batch_size=system.batch_size,
            progress=make_progress("img"),
            **_pair_camids(pairs),
        )
    score = cosine_to_unit(np.asarray(cos, dtype=np.float64))
    n = pairs.num_rows
    table = pa.table(
        {
            "pair_id": pairs.column("pair_id"),
            "system": pa.array([system.name] * n, pa.string()),
            "score": pa.array(score, pa.float64()),
            # Embedder decisions are made by the metrics stage at the stated threshold.
            "decision": pa.array(["unknown"] * n, pa.string()),
            "status": pa.array(["ok"] * n, pa.string()),
            "latency_s": pa.nulls(n, pa.float64()),
            "tokens_in": pa.array(np.zeros(n, np.int64)),
            "tokens_out": pa.array(np.zeros(n, np.int64)),
            "cost_usd": pa.array(np.zeros(n)),
            "raw": pa.array([""] * n, pa.string()),
            "order": pa.array(["ab"] * n, pa.string()),
            "repeat": pa.array(np.zeros(n, np.int64)),
            "reasons": pa.nulls(n, pa.string()),
            "error": pa.nulls(n, pa.string()),
            "cached": pa.array([False] * n, pa.bool_()),
            "attempts": pa.array(np.zeros(n, np.int64)),
        },
        schema=SCORES_SCHEMA,
    )
    return table, embedder.fingerprint, embedder.info.get("weights_pin")


def _score_with_judge(system: LVLMSystemConfig, dataset, pairs, paths, make_progress, environ):
    from reidbench.judges import judge_pairs, system_manifest

    table = judge_pairs(
        system,
        pairs,
        dataset.root,
        cache_path=paths.response_cache,
        progress=make_progress("call"),
        environ=environ,
        stopped=paths.stopped,
        claim_lease_s=paths.claim_lease_s,
    )
    # cast() drops schema metadata: keep the served-version summary judge_pairs put there
    table = table.cast(SCORES_SCHEMA).replace_schema_metadata(table.schema.metadata)
    return table, _settings_hash(system_manifest(system))


def _ensure_live_cascade(cfg, dataset, pairs, paths, make_progress, log, environ, manifest):
    """Ask the cascade's LVLM only about held-out pairs inside the band (docs/fusion.md)."""
    from reidbench.fusion.live import ask_live, plan_live_cascade
    from reidbench.fusion.records import default_name
    from reidbench.judges import system_manifest

    c = cfg.cascade
    lvlm = next(s for s in cfg.systems if s.name == c.lvlm)
    reid_entry = next(e for e in manifest["systems"] if e["name"] == c.reid)
    plan = plan_live_cascade(
        reid_entry, read_table(paths.system_scores(c.reid)), pairs, cfg.seed, c
    )
    ids = pairs.column("pair_id").to_numpy()
    settings = _settings_hash(
        {
            "system": lvlm.model_dump(mode="json"),
            "cascade": c.model_dump(mode="json"),
            "candidates": plan.digest(ids),
        }
    )
    name = c.name or default_name("cascade", [c.reid, c.lvlm])
    target = paths.system_scores(lvlm.name)
    fingerprint = _settings_hash(system_manifest(lvlm))
    stored = _reusable(target, settings, pairs)
    if stored is not None:
        log(f"{lvlm.name}: live cascade already complete, reusing {target}")
        _record_asked(manifest, lvlm.name, plan.manifest(stored.num_rows, name), fingerprint)
        return
    cap = "" if plan.budget_usd is None else f", most uncertain first until ${plan.budget_usd:.4f}"
    log(
        f"{lvlm.name}: live cascade asks about {plan.candidates.size} of {plan.n_held_out} "
        f"held-out pairs (band around {c.reid}'s threshold {plan.reid.threshold:.4g}{cap})"
    )
    table = ask_live(
        lvlm,
        pairs,
        plan,
        dataset.root,
        cache_path=paths.response_cache,
        progress=make_progress("call"),
        environ=environ,
        stopped=paths.stopped,
        claim_lease_s=paths.claim_lease_s,
    ).cast(SCORES_SCHEMA)
    meta = {"settings": settings, "pairs_hash": _pairs_hash(pairs), "fingerprint": fingerprint}
    write_table(target, table, meta)
    _record_asked(manifest, lvlm.name, plan.manifest(table.num_rows, name), fingerprint)
    ok = sum(1 for s in table.column("status").to_pylist() if s == "ok")
    log(f"{lvlm.name}: {ok}/{table.num_rows} answered (live cascade)")


def _record_asked(manifest: dict, name: str, asked: dict, fingerprint: str) -> None:
    for entry in manifest["systems"]:
        if entry["name"] == name:
            entry["asked"] = asked
            entry["fingerprint"] = fingerprint


def _ensure_fusions(cfg: ExperimentConfig, paths: RunPaths, log: Log) -> None:
    """Fit the configured fusion and cascade on the finished run (cheap, so always re-fit)."""
    from reidbench.config import check_fusion_references
    from reidbench.fusion.records import fuse_run

    check_fusion_references(cfg, str(paths.manifest))
    if cfg.fusion is not None:
        f = cfg.fusion
        fuse_run(
            paths.out,
            f.systems,
            method=f.method,
            name=f.name,
            cv_folds=f.cv_folds,
            cs=f.cs,
            select_inputs=f.select_inputs,
            log=log,
            force=True,  # the config is the declared intent: a changed [fusion] refits
        )
    if cfg.cascade is not None:
        c = cfg.cascade
        fuse_run(
            paths.out,
            [c.reid, c.lvlm],
            method="cascade",
            name=c.name,
            fraction=c.fraction,
            budget_usd_per_1k=c.budget_usd_per_1k,
            fractions=c.fractions,
            live=c.live,
            log=log,
            force=True,
        )


def _merge_scores(cfg: ExperimentConfig, paths: RunPaths) -> None:
    tables = [read_table(paths.system_scores(s.name)) for s in cfg.systems]
    merged = pa.concat_tables([t.select(SCORES_SCHEMA.names).cast(SCORES_SCHEMA) for t in tables])
    write_table(paths.scores, merged)


def _ensure_retrieval(cfg, dataset, paths, make_progress, log) -> None:
    from reidbench.models import FeatureCache
    from reidbench.retrieval_run import evaluate_embedder

    results: dict[str, Any] = {}
    if paths.retrieval.exists():
        results = json.loads(paths.retrieval.read_text())
    for system in cfg.systems:
        if not isinstance(system, ReIDSystemConfig):
            continue
        embedder = _load_system_embedder(system)
        if results.get(system.name, {}).get("fingerprint") == embedder.fingerprint:
            continue
        with FeatureCache(paths.feature_cache) as cache:
            run = evaluate_embedder(
                embedder,
                dataset,
                cache=cache,
                batch_size=system.batch_size,
                progress=make_progress,
            )
        results[system.name] = {
            "fingerprint": embedder.fingerprint,
            **run.summary(),
            "num_query": len(dataset.query),
            "num_gallery": len(dataset.gallery),
        }
        log(f"{system.name}: retrieval rank-1 {run.result.rank(1):.3f}, mAP {run.result.mAP:.3f}")
        write_json_atomic(paths.retrieval, results)
