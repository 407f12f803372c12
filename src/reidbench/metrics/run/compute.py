"""Assemble `metrics.json` for a run directory from the per-concern modules beside this one.

Reads the run directory once through `reidbench.rundir` (the fusion records included), so
metrics never imports the fusion stage. Every key is documented in docs/metrics.md; the
HTML report is drawn from this alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from reidbench import __version__
from reidbench.errors import UserError
from reidbench.files import write_text_atomic
from reidbench.metrics import failures as fail
from reidbench.metrics import specs
from reidbench.metrics.run.attributes import attribute_blocks
from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.metrics.run.comparisons import comparisons
from reidbench.metrics.run.fused import fused_systems, system_on
from reidbench.metrics.run.headline import system_block
from reidbench.metrics.run.like_for_like import held_out_view
from reidbench.metrics.run.negatives import by_negative_kind, mined_mask, miner_warnings
from reidbench.metrics.run.prompts import fill_position_bias, prompt_blocks
from reidbench.metrics.run.retrieval_band import with_band
from reidbench.metrics.run.thresholds import DEFAULT_RULE, RULE_TEXT, RULES, Decided
from reidbench.metrics.run.views import analysis_views
from reidbench.progress import NullProgress, Progress
from reidbench.records import METRICS_SCHEMA_VERSION, manifest_from_dict, metrics_from_dict
from reidbench.rundir import RunDir, clean_json, open_run, read_json
from reidbench.tasks.registry import MetricsSettings, tasks_metrics

METRICS_FORMAT = "reidbench.metrics/1"


def _retrieval(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "retrieval.json"
    if not path.is_file():
        return {}
    data = read_json(path, "retrieval.json")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected an object {{system: {{rank1, mAP, ...}}}}; re-run")
    return clean_json(data)


def _protocol(run_cfg: dict, boot: Bootstrap, split: dict[str, Any], rule: str) -> dict:
    return {
        "primary_answer": "the scores row with order 'ab' and repeat 0; other rows feed "
        "consistency only",
        "answered": "status 'ok' with a score, or with a stated 'same'/'different' decision",
        "decision_rule": "same when score >= threshold, on the system's own scale; "
        "answers with no score use the system's stated decision (and are left out of "
        "AUC, PR-AUC, EER, TAR and score distributions)",
        "thresholds": f"every system without a threshold fixed in the config: {RULE_TEXT[rule]}, "
        "2-fold cross-fitted over the identity-disjoint halves (half A's threshold decides half "
        "B and vice versa; pairs across the halves at the mean of the two); a threshold fixed "
        "in the config is used as is ('fixed'); LVLMs also report an 'as_prompted' block",
        "threshold_rule": rule,
        "split": split,
        "bootstrap": boot.protocol(),
        **{s.key: s.protocol for s in specs.METRIC_SPECS if s.protocol},
        "confident_wrong": "LVLM judges only: score/scale*100 >= 90 on a different-person "
        "pair, or <= 10 on a same-person pair",
        "mcnemar": "exact two-sided binomial test on discordant pairs, pairs both answered",
        "auc_diff": "paired bootstrap (same draws for both systems) on pairs both scored",
        "coverage_aware": "headline: every pair counts, an abstention is a coin flip (0.5 "
        "correct; tied with the other class in AUC / EER / TAR); answered-only metrics are the "
        "optimistic bound, failures-as-wrong the pessimistic one; highlights and the "
        "coverage_aware paired tests use it",
        "config_bootstrap": run_cfg.get("bootstrap"),
    }


def _int_setting(value: Any, name: str, run_dir: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"{run_dir / 'run.json'}: config.{name} must be a whole number >= 0")
    return value


def compute_metrics(
    run_dir: str | Path | RunDir,
    *,
    bootstrap: int | None = None,
    seed: int | None = None,
    level: float = 0.95,
    progress: Progress | None = None,
    threshold_rule: str | None = None,
) -> dict[str, Any]:
    """Everything metrics.json holds, for the run in ``run_dir`` (see docs/metrics.md).

    ``run_dir`` is a path or an opened `RunDir` (whose fusion records the orchestrator may
    have handed in with `RunDir.set_fused`). ``bootstrap`` and ``seed`` default to the run
    config's ``bootstrap`` and ``seed``.
    """
    if isinstance(run_dir, RunDir):
        if seed is not None and seed != run_dir.seed:
            run_dir = open_run(run_dir.path, seed=seed)
        run = run_dir
    else:
        raw = Path(run_dir)
        if seed is not None:
            _int_setting(seed, "seed", raw)
        run = open_run(raw, seed=seed)
    cfg = run.config
    n_boot = _int_setting(
        cfg.get("bootstrap", 1000) if bootstrap is None else bootstrap, "bootstrap", run.path
    )
    # Intervals and paired tests resample people, not pairs (two-way cluster bootstrap over
    # the identities each pair involves: docs/metrics.md, Statistics).
    boot = Bootstrap(n_boot=n_boot, seed=run.seed, level=level, clusters=run.pairs.clusters())
    rule = str(threshold_rule or cfg.get("threshold_rule") or DEFAULT_RULE)
    if rule not in RULES:
        raise UserError(f"threshold rule {rule!r}: use one of {', '.join(RULES)}")
    pairs = run.pairs
    halves = run.halves()
    split = halves.to_json(pairs.label)
    split["leakage"] = pairs.leakage(halves)
    triplets = pairs.triplets(run.run)
    retrieval = _retrieval(run.path)

    prog = progress or NullProgress()
    n_sys = len(run.systems)
    prog.start("metrics", total=n_sys + n_sys * (n_sys - 1) // 2)
    systems: dict[str, Any] = {}
    views: list[Decided] = []
    examples: dict[str, Any] = {}
    try:
        for name, view in run.systems.items():
            entry = view.entry
            if isinstance(entry.get("asked"), dict):  # a live cascade asked this LVLM a subset
                keep = np.isin(pairs.pair_id, view.rows.pair_id)
                block, decided, ex = system_on(keep, view, pairs, halves, triplets, boot)
                block["evaluated_on"] = "pairs asked: " + str(entry["asked"].get("rule", ""))
            else:
                block, decided, ex = system_block(view, pairs, halves, triplets, boot, rule=rule)
            if name in retrieval:
                block["retrieval"] = with_band(retrieval[name], n_boot, run.seed, level)
            systems[name] = block
            views.append(decided)
            examples[name] = ex
            prog.advance(1)
        records, skipped = run.fused()
        fused = fused_systems(records, skipped, pairs, halves, triplets, boot, views)
        for name, block, decided, ex in fused["systems"]:
            systems[name] = block
            views.append(decided)
            examples[name] = ex
        comps = comparisons(views, pairs.label, boot, pairs.pair_id)
        held_view = None
        if any(b.get("evaluated_on") for b in systems.values()):
            held_view = held_out_view(views, pairs, halves, boot, systems)
        mined, miner = mined_mask(pairs)
        if miner is not None:
            for v in views:
                if not systems[v.name].get("evaluated_on"):
                    systems[v.name]["by_negative_kind"] = by_negative_kind(v, pairs, mined, miner)
        prog.advance(len(comps))
    finally:
        prog.finish()

    for name, attrs in attribute_blocks(run, boot).items():  # docs/tasks.md, Attributes
        systems[name]["attributes"] = attrs
    counts = {name: block["failures"] for name, block in systems.items()}
    manifest = run.manifest or manifest_from_dict(run.run)
    pairs_meta = clean_json({k: v for k, v in pairs.meta.items() if k != "triplets"})
    out: dict[str, Any] = {
        "format": METRICS_FORMAT,
        "schema_version": METRICS_SCHEMA_VERSION,  # reidbench.records.MetricsRecord
        "reidbench_version": __version__,
        "run": {
            "name": cfg.get("name"),
            "created": manifest.created,
            "run_reidbench_version": manifest.reidbench_version,
            "synthetic": bool(manifest.dataset.get("synthetic", False)),
            "dataset": clean_json(manifest.dataset),
            "pairs": {
                "n_pairs": pairs.n,
                "n_same": int(pairs.label.sum()),
                "n_different": int(pairs.n - pairs.label.sum()),
                "n_triplets": int(triplets.shape[0]),
                "meta": pairs_meta,
            },
            "protocol": _protocol(cfg, boot, split, rule),
            "checks": {
                "pairs_content_hash": "not verified" if run.notes else "verified",
                "scores": "within each system's scale; known statuses and decisions; no "
                "duplicate rows",
                "notes": [*run.notes, *fused["notes"]],
            },
        },
        "systems": systems,
        "comparisons": comps,
        "warnings": miner_warnings(miner, run.entries),
        "failures": {"ranking": fail.rank_systems(counts), "examples": examples},
    }
    out.update(prompt_blocks(systems, comps, views))  # models asked with several prompts
    if held_view is not None:
        out["held_out"] = held_view
    out.update(analysis_views(run, views, boot))
    other = {
        k: with_band(v, n_boot, run.seed, level) for k, v in retrieval.items() if k not in systems
    }
    if other:
        out["retrieval_other"] = other
    for key in ("fusion", "cascade", "fusion_skipped"):
        if fused[key]:
            out[key] = clean_json(fused[key])
    rerank = run.path / "rerank.json"
    if rerank.is_file():
        out["rerank"] = clean_json(read_json(rerank, "rerank.json"))
    tasks = tasks_metrics(run.path, cfg, MetricsSettings(n_boot, run.seed, level))  # docs/tasks.md
    if tasks:
        out["tasks"] = clean_json(tasks)
        if "prompt_sensitivity" in out:  # choice tasks measure each prompt's position bias
            fill_position_bias(out["prompt_sensitivity"], out["tasks"])
    return metrics_from_dict(out, str(run.path / "metrics.json")).to_json_dict()


def metrics_json(metrics: dict[str, Any]) -> str:
    """Strict JSON text (raises on NaN/Infinity, which compute_metrics never produces)."""
    return json.dumps(metrics, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def write_metrics(run_dir: str | Path | RunDir, **kwargs: Any) -> dict[str, Any]:
    """Compute the metrics of ``run_dir`` and write ``run_dir/metrics.json`` atomically."""
    metrics = compute_metrics(run_dir, **kwargs)
    path = run_dir.path if isinstance(run_dir, RunDir) else Path(run_dir)
    write_text_atomic(path / "metrics.json", metrics_json(metrics))
    return metrics
