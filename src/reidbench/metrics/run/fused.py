"""Systems evaluated on a subset of the pairs: fused systems (held-out half only) and the
LVLM of a live cascade (pairs it was asked); each fused system against its inputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics.coverage import coverage_aware_metrics
from reidbench.metrics.run.blocks import block, metric_names
from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.metrics.run.failures import failures_as_wrong_summary
from reidbench.metrics.run.headline import system_block
from reidbench.metrics.run.thresholds import Decided
from reidbench.metrics.specs import keys
from reidbench.rundir import FusedRecord, Pairs, SystemView
from reidbench.rundir.halves import Halves

MIXED_SCALES_NOTE = (
    "not reported: the cascade's score mixes the ReID model's and the LVLM's scales "
    "(decisions only)"
)
SUBSET_TUNED_NOTE = (
    "not applicable: this system is evaluated on held-out pairs only; its threshold was "
    "already chosen on calibration half A"
)


def system_on(
    keep: np.ndarray,
    view: SystemView,
    pairs: Pairs,
    halves: Halves,
    triplets: np.ndarray,
    boot: Bootstrap,
) -> tuple[dict[str, Any], Decided, dict[str, Any]]:
    """`system_block` over the pairs in `keep` only, at the recorded threshold (fitted or
    asked on half A already); the view comes back laid over all pairs."""
    sub = pairs.subset(keep)
    block_, d, ex = system_block(
        view.take(keep, pairs), sub, halves.take(keep), triplets, boot.subset(keep), fit=False
    )
    block_["tuned_halves"]["note"] = SUBSET_TUNED_NOTE
    return block_, d.expand(keep, pairs.n), ex


def fused_systems(
    records: list[FusedRecord],
    skipped: list[dict[str, str]],
    pairs: Pairs,
    halves: Halves,
    triplets: np.ndarray,
    boot: Bootstrap,
    views: list[Decided],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "systems": [],
        "fusion": {},
        "cascade": {},
        "fusion_skipped": [],
        "notes": [],
    }
    out["fusion_skipped"] = list(skipped)
    by_name = {v.name: v for v in views}
    for fused in records:
        record, name = fused.record, fused.name
        if name in by_name:
            out["fusion_skipped"].append(
                {"name": name, "reason": "a system of the run has the same name"}
            )
            continue
        view = fused.view(pairs.n)
        split = record.get("split") or {}
        if split.get("halves") == "identity" and split.get("seed") == halves.seed:
            keep = halves.b  # coverage over every pair it was meant to answer
        else:  # a record fitted on the former pair-level halves
            keep = np.isin(pairs.pair_id, view.rows.pair_id)
            out["notes"].append(
                f"{name}: fitted on the former pair-level halves (before identity-disjoint "
                "halves), so its held-out pairs share identities with its calibration pairs; "
                "re-run `reidbench fuse` to refit"
            )
        if np.any(np.isin(view.rows.pair_id, pairs.pair_id[~keep])):
            keep = keep | np.isin(pairs.pair_id, view.rows.pair_id)
        mixed = False
        if record["method"] == "cascade":
            op = record["cascade"]["operating_point"]
            mixed = 0 < int(op.get("n_sent") or 0) < int(op.get("n") or 0)
        if mixed:  # two score scales in one column: decisions only (issue #9 item 7)
            view.score = np.full_like(view.score, np.nan)
            view.rows.score = np.full_like(view.rows.score, np.nan)
        block_, d, ex = system_on(keep, view, pairs, halves, triplets, boot)
        if mixed:
            for k in keys("ranking"):
                block_["null_reasons"][k] = MIXED_SCALES_NOTE
            ca = block_["coverage_aware"]
            for k in keys("ranking", coverage=True, builtin=True):
                ca[k] = None
                ca["null_reasons"][k] = MIXED_SCALES_NOTE
                ca["ci"]["intervals"][k] = None
            block_["risk_coverage"] = {"aurc": None, "coverage": [], "risk": []}
            block_["risk_coverage"]["null_reasons"] = {"aurc": MIXED_SCALES_NOTE}
        block_["evaluated_on"] = "held-out"
        block_["threshold_source"] = "fusion"
        block_["threshold_calibration"] = {
            "calibration_pairs": record["split"]["n_calibration"],
            "calibration_f1": record["logistic"]["threshold"]["calibration_f1"]
            if record["method"] == "logistic"
            else (record["cascade"]["operating_point"].get("calibration") or {}).get("f1"),
        }
        block_["threshold_note"] = (
            "fused probability >= threshold; threshold chosen by best F1 on calibration half A"
            if record["method"] == "logistic"
            else "cascade decision: score >= 0.5 (ReID decision outside the band, LVLM inside)"
        )
        out["systems"].append((name, block_, d, ex))
        summary = {k: block_.get(k) for k in (*metric_names(), "n_answered", "threshold")}
        summary["ci"] = block_["ci"]["intervals"]
        common = {
            "name": name,
            "method": record["method"],
            "systems": record["systems"],
            "evaluated_on": "held-out",
            "split": record["split"],
            "created": record.get("created"),
            "file": record.get("rows_file"),
            "fused": summary,
        }
        if record["method"] == "logistic":
            versus = versus_singles(d, record["systems"], by_name, pairs.label, boot)
            selection = record.get("selection")  # absent in records made before selection
            out["fusion"][name] = {
                **common,
                **versus,
                "selection": selection,
                "model": record["logistic"],
            }
        else:
            out["cascade"][name] = {**common, **record["cascade"]}
    return out


def versus_singles(
    fused: Decided, names: list[str], by_name: dict[str, Decided], y: np.ndarray, boot: Bootstrap
) -> dict[str, Any]:
    """Each fused system alone on the same held-out pairs, and the fused one vs the best."""
    held = fused.answered
    singles: dict[str, Any] = {}
    for s in names:
        v = by_name[s]
        m = held & v.answered
        pred = v.pred[m] if v.pred is not None else None
        b = block(y[m], v.score[m], pred)
        b.update(
            n_pairs=int(held.sum()),
            n_answered=int(m.sum()),
            coverage=float(m.sum() / held.sum()) if held.any() else None,
            threshold=v.threshold,
            ci=boot.ci(y[m], v.score[m], pred, at=m)["intervals"],
        )
        b["failures_as_wrong"] = failures_as_wrong_summary(v.take(held), y[held], boot.subset(held))
        vh = v.take(held)
        b["coverage_aware"] = coverage_aware_metrics(y[held], vh.score, vh.pred, vh.answered)
        singles[s] = b

    def rank_auc(s: str) -> float:
        # No reward for refusing: ranked by the coverage-aware AUC (abstentions as coin flips).
        auc = singles[s]["coverage_aware"]["auc"]
        return -1.0 if auc is None else auc

    ranked = sorted(names, key=rank_auc)
    best = ranked[-1]
    bv = by_name[best]
    m = held & bv.answered & np.isfinite(bv.score)
    versus: dict[str, Any] = {"a": fused.name, "b": best, "null_reasons": {}}
    if bv.pred is None or fused.pred is None:
        versus["mcnemar"] = None
        versus["null_reasons"]["mcnemar"] = "a system has no decision threshold"
    else:
        versus["mcnemar"] = boot.mcnemar(
            fused.pred[m] == (y[m] == 1), bv.pred[m] == (y[m] == 1), at=m
        )
    versus["auc_diff"] = boot.auc_diff(y[m], fused.score[m], bv.score[m], at=m)
    versus["pairs"] = "held-out pairs the best single system answered with a score"
    versus["coverage_aware"] = boot.subset(held).coverage_paired(
        y[held],
        (fused.score[held], None if fused.pred is None else fused.pred[held], fused.answered[held]),
        (bv.score[held], None if bv.pred is None else bv.pred[held], bv.answered[held]),
    )
    return {
        "singles": singles,
        "best_single": best,
        "best_single_rule": "the input with the highest coverage-aware AUC (abstentions "
        "as coin flips) on the held-out pairs (chosen on held-out: favours the single system, "
        "so the test is conservative)",
        "vs_best": versus,
    }
