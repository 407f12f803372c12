"""Failures of one system: counts by kind, worst-case metrics (failures as wrong), examples."""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics import failures as fail
from reidbench.metrics.run.blocks import block, metric_names
from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.metrics.run.thresholds import Decided
from reidbench.rundir import Pairs, SystemView

EXAMPLES_PER_CATEGORY = 12
TEXT_LIMIT = 500

FAILURES_AS_WRONG_RULE = (
    "all pairs count; an unanswered pair is a wrong decision (same-person pairs "
    "rejected, different-person pairs accepted) and ranks as the worst score "
    "for its label in AUC / PR-AUC / EER / TAR"
)


def failures_as_wrong(view: Decided, y: np.ndarray, boot: Bootstrap) -> dict[str, Any]:
    """Every pair counts; a pair without an answer is a wrong decision and a worst-ranked score."""
    answered = view.answered
    s_ok = view.score[answered & np.isfinite(view.score)]
    lo = min(0.0, float(s_ok.min()) if s_ok.size else 0.0) - 1.0
    hi = max(view.scale, float(s_ok.max()) if s_ok.size else view.scale) + 1.0
    s = np.where(answered, view.score, np.where(y == 1, lo, hi))
    pred = None
    if view.pred is not None:
        pred = np.where(answered, view.pred, y == 0)
    out = block(y, s, pred)
    out["coverage"] = float(answered.mean()) if y.size else None
    out["n_failed"] = int((~answered).sum())
    out["rule"] = FAILURES_AS_WRONG_RULE
    out["ci"] = boot.ci(y, s, pred, rates={"coverage": answered})
    return out


def failures_as_wrong_summary(view: Decided, y: np.ndarray, boot: Bootstrap) -> dict[str, Any]:
    faw = failures_as_wrong(view, y, boot)
    return {k: faw.get(k) for k in (*metric_names(), "coverage", "n_failed", "rule")}


def failure_counts(
    view: SystemView, decided: Decided, y: np.ndarray
) -> tuple[dict[str, Any], np.ndarray | None, np.ndarray | None]:
    """Counts per failure kind over primary answers, plus every call's status; also the
    confident false accept/reject masks (None for embedders)."""
    fa: np.ndarray | None
    fr: np.ndarray | None
    if decided.kind == "lvlm":
        fa, fr = fail.confident_wrong(y, decided.score, decided.scale, ok=decided.answered)
    else:
        fa = fr = None
    counts = fail.failure_counts(view.status, fa, fr)
    # The headline counts use each pair's primary answer; calls made for the symmetry and
    # repeat checks can fail too, and are counted here so that no refusal goes unseen.
    statuses, numbers = np.unique(np.asarray(view.rows.status, dtype=str), return_counts=True)
    counts["all_calls"] = {str(k): int(v) for k, v in zip(statuses, numbers, strict=True)}
    return counts, fa, fr


def examples(
    view: SystemView, pairs: Pairs, fa: np.ndarray | None, fr: np.ndarray | None
) -> dict[str, Any]:
    """Up to EXAMPLES_PER_CATEGORY pairs per failure category, in pair_id order."""
    categories = {k: view.status == k for k in (*fail.CATASTROPHIC, "api_error")}
    categories["budget_exceeded"] = view.status == "budget_exceeded"
    if fa is not None and fr is not None:
        categories["confident_false_accept"] = fa
        categories["confident_false_reject"] = fr
    example_rows = {
        "pair_id": pairs.pair_id,
        "path_a": pairs.path_a,
        "path_b": pairs.path_b,
        "label": pairs.label,
        "score": view.score,
        "decision": view.decision,
        "status": view.status,
        "raw": view.raw,
        "error": view.error,
        "reasons": view.reasons,
    }
    by_id = np.argsort(pairs.pair_id, kind="stable")
    return fail.failure_examples(
        {k: m[by_id] for k, m in categories.items()},
        {k: v[by_id] for k, v in example_rows.items()},
        k=EXAMPLES_PER_CATEGORY,
        text_limit=TEXT_LIMIT,
    )
