"""Read a run directory and compute everything `metrics.json` holds.

The one orchestrator over the pure metric functions: it reads `run.json`,
`pairs.parquet`, `scores.parquet` (and `retrieval.json` when present), picks
the rows each metric needs, and assembles one self-describing dict. Every key
is documented in docs/metrics.md; the HTML report is drawn from this alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reidbench import __version__
from reidbench.errors import UserError
from reidbench.files import write_text_atomic
from reidbench.metrics import consistency as cons
from reidbench.metrics import failures as fail
from reidbench.metrics import verification as ver
from reidbench.metrics.costs import cost_summary
from reidbench.metrics.splits import calibration_mask
from reidbench.metrics.stats import bootstrap_ci, mcnemar, paired_bootstrap_auc
from reidbench.progress import NullProgress, Progress
from reidbench.tables import PAIRS_SCHEMA, SCORES_SCHEMA, STATUSES, read_meta, read_table

__all__ = ["METRICS_FORMAT", "compute_metrics", "metrics_json", "write_metrics"]

METRICS_FORMAT = "reidbench.metrics/1"
DEFAULT_SCALE = {"lvlm": 100.0, "reid": 1.0}
METRIC_NAMES = (*ver.THRESHOLD_METRICS, *ver.RANKING_METRICS)
EXAMPLES_PER_CATEGORY = 12
TEXT_LIMIT = 500


# --- reading the run directory ------------------------------------------------------


@dataclass
class _Pairs:
    pair_id: np.ndarray
    label: np.ndarray
    path_a: np.ndarray
    path_b: np.ndarray
    meta: dict[str, Any]
    sorter: np.ndarray  # argsort of pair_id, for id -> row lookups

    @property
    def n(self) -> int:
        return int(self.pair_id.size)

    def rows_of(self, ids: np.ndarray, where: str) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        sorted_ids = self.pair_id[self.sorter]
        pos = np.searchsorted(sorted_ids, ids)
        found = pos < self.n
        found[found] = sorted_ids[pos[found]] == ids[found]
        if not found.all():
            example = int(ids[np.flatnonzero(~found)[0]])
            raise UserError(
                f"{where}: pair_id {example} is not in pairs.parquet; the scores and pairs "
                "come from different runs, re-run `reidbench run` into a fresh directory"
            )
        return self.sorter[pos]


def _np(table: pa.Table, name: str, kind: str) -> np.ndarray:
    col = table.column(name)
    if kind == "float":
        return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    if kind == "int":
        return np.asarray(pc.fill_null(pc.cast(col, pa.int64()), 0).to_numpy(), np.int64)
    if kind == "bool":
        return np.asarray(pc.fill_null(col, False).to_numpy(zero_copy_only=False), bool)
    return np.asarray(col.to_pylist(), dtype=object)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable {what} ({exc}); re-create it") from exc


def _read_pairs(run_dir: Path) -> _Pairs:
    path = run_dir / "pairs.parquet"
    table = read_table(path, schema=PAIRS_SCHEMA)
    ids = _np(table, "pair_id", "int")
    label = _np(table, "label", "int")
    if ids.size and np.unique(ids).size != ids.size:
        raise UserError(f"{path}: duplicate pair_id values; re-create the pair set")
    if np.any((label != 0) & (label != 1)):
        raise UserError(f"{path}: labels must be 0 (different) or 1 (same); re-create the pair set")
    return _Pairs(
        pair_id=ids,
        label=label,
        path_a=_np(table, "path_a", "str"),
        path_b=_np(table, "path_b", "str"),
        meta=read_meta(table),
        sorter=np.argsort(ids, kind="stable"),
    )


@dataclass
class _Rows:
    """Every scores row of one system, as aligned arrays."""

    pair_id: np.ndarray
    row: np.ndarray  # index into the pairs table
    score: np.ndarray
    decision: np.ndarray
    status: np.ndarray
    order: np.ndarray
    repeat: np.ndarray
    latency: np.ndarray
    tokens_in: np.ndarray
    tokens_out: np.ndarray
    cost: np.ndarray
    raw: np.ndarray
    reasons: np.ndarray
    error: np.ndarray
    cached: np.ndarray
    attempts: np.ndarray

    def take(self, mask: np.ndarray) -> _Rows:
        return _Rows(**{k: v[mask] for k, v in self.__dict__.items()})

    @property
    def answered(self) -> np.ndarray:
        stated = (self.decision == "same") | (self.decision == "different")
        return (self.status == "ok") & (np.isfinite(self.score) | stated)


def _read_scores(run_dir: Path, pairs: _Pairs) -> dict[str, _Rows]:
    path = run_dir / "scores.parquet"
    return _rows_by_system(read_table(path, schema=SCORES_SCHEMA), pairs, path)


def _rows_by_system(table: pa.Table, pairs: _Pairs, path: Path) -> dict[str, _Rows]:
    systems = _np(table, "system", "str")
    status = _np(table, "status", "str")
    order = _np(table, "order", "str")
    unknown = sorted({str(s) for s in status} - set(STATUSES))
    if unknown:
        raise UserError(f"{path}: unknown status values {unknown}; expected one of {STATUSES}")
    bad_order = sorted({str(o) for o in order} - {"ab", "ba"})
    if bad_order:
        raise UserError(f"{path}: unknown order values {bad_order}; expected 'ab' or 'ba'")
    ids = _np(table, "pair_id", "int")
    rows = _Rows(
        pair_id=ids,
        row=pairs.rows_of(ids, str(path)),
        score=_np(table, "score", "float"),
        decision=_np(table, "decision", "str"),
        status=status,
        order=order,
        repeat=_np(table, "repeat", "int"),
        latency=_np(table, "latency_s", "float"),
        tokens_in=_np(table, "tokens_in", "float"),
        tokens_out=_np(table, "tokens_out", "float"),
        cost=_np(table, "cost_usd", "float"),
        raw=_np(table, "raw", "str"),
        reasons=_np(table, "reasons", "str"),
        error=_np(table, "error", "str"),
        cached=_np(table, "cached", "bool"),
        attempts=_np(table, "attempts", "float"),
    )
    out = {}
    for name in dict.fromkeys(systems.tolist()):
        sub = rows.take(systems == name)
        key = np.stack([sub.pair_id, sub.repeat, (sub.order == "ba").astype(np.int64)], axis=1)
        if np.unique(key, axis=0).shape[0] != key.shape[0]:
            raise UserError(
                f"{path}: system {name!r} has more than one row for the same pair, order and "
                "repeat; the file was merged twice, re-run `reidbench run`"
            )
        out[str(name)] = sub
    return out


def _clean(obj: Any) -> Any:
    """Copy of JSON-like data with non-finite floats as None (run.json may hold NaN)."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


# --- one system --------------------------------------------------------------------


@dataclass
class _View:
    """A system's primary answer per pair, aligned with the pairs table."""

    name: str
    kind: str
    scale: float
    score: np.ndarray  # NaN where no score
    stated_same: np.ndarray
    status: np.ndarray  # "missing" where the system has no primary row
    answered: np.ndarray
    threshold: float | None
    pred: np.ndarray | None  # decisions over all pairs (only meaningful where answered)


def _primary(rows: _Rows, pairs: _Pairs) -> dict[str, np.ndarray]:
    first = rows.take((rows.order == "ab") & (rows.repeat == 0))
    n = pairs.n
    out = {
        "score": np.full(n, np.nan),
        "decision": np.full(n, "unknown", dtype=object),
        "status": np.full(n, "missing", dtype=object),
        "raw": np.full(n, None, dtype=object),
        "error": np.full(n, None, dtype=object),
        "reasons": np.full(n, None, dtype=object),
    }
    out["score"][first.row] = first.score
    out["decision"][first.row] = first.decision
    out["status"][first.row] = first.status
    out["raw"][first.row] = first.raw
    out["error"][first.row] = first.error
    out["reasons"][first.row] = first.reasons
    return out


def _decide_or_none(score: np.ndarray, thr: float | None, stated: np.ndarray) -> np.ndarray | None:
    if thr is None and np.isfinite(score).any():
        return None
    return ver.decide(score, thr, stated)


def _block(
    y: np.ndarray,
    s: np.ndarray,
    pred: np.ndarray | None,
    *,
    no_pred_reason: str = "no decision threshold",
) -> dict[str, Any]:
    """Threshold metrics (if decisions exist) and ranking metrics over the scored rows."""
    out: dict[str, Any] = {"n": int(y.size)}
    reasons: dict[str, str] = {}
    if pred is None:
        out.update(dict.fromkeys(ver.THRESHOLD_METRICS))
        reasons.update(dict.fromkeys(ver.THRESHOLD_METRICS, no_pred_reason))
    else:
        tm = ver.threshold_metrics(y, pred)
        reasons.update(tm.pop("null_reasons"))
        tm.pop("n")
        out.update(tm)
    scored = np.isfinite(s)
    rm = ver.ranking_metrics(y[scored], s[scored])
    reasons.update(rm.pop("null_reasons"))
    out.update(rm)
    out["null_reasons"] = reasons
    return out


def _choose_threshold(
    entry: dict[str, Any],
    kind: str,
    y: np.ndarray,
    s: np.ndarray,
    calib: np.ndarray,
    answered: np.ndarray,
) -> dict[str, Any]:
    # An LVLM entry without the key gets the 0-100 default; an explicit null means "calibrate".
    recorded = entry.get("threshold", 50.0 if kind == "lvlm" else None)
    if recorded is not None:
        source = "recorded" if "threshold" in entry else "lvlm_default"
        return {"threshold": float(recorded), "source": source, "reason": None}
    use = answered & calib & np.isfinite(s)
    t, f1, reason = ver.best_f1_threshold(y[use], s[use])
    return {
        "threshold": t,
        "source": "calibration_best_f1",
        "calibration_pairs": int(use.sum()),
        "calibration_f1": f1,
        "reason": reason,
    }


def _tuned_halves(view: _View, y: np.ndarray, calib: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rule": "threshold tuned by best F1 on one half's answered scored pairs, "
        "every metric measured on the other half's answered pairs",
    }
    halves = {"A": calib, "B": ~calib}
    for key, tune, test in (("a_to_b", "A", "B"), ("b_to_a", "B", "A")):
        tune_mask = view.answered & halves[tune] & np.isfinite(view.score)
        t, f1, reason = ver.best_f1_threshold(y[tune_mask], view.score[tune_mask])
        test_mask = view.answered & halves[test]
        pred = _decide_or_none(view.score[test_mask], t, view.stated_same[test_mask])
        block = _block(
            y[test_mask], view.score[test_mask], pred, no_pred_reason=reason or "no threshold"
        )
        block.update(
            {
                "tuned_on": tune,
                "measured_on": test,
                "threshold": t,
                "n_tune": int(tune_mask.sum()),
                "tune_f1": f1,
            }
        )
        if reason:
            block["null_reasons"]["threshold"] = reason
        out[key] = block
    mean: dict[str, Any] = {"null_reasons": {}}
    for m in METRIC_NAMES:
        a, b = out["a_to_b"].get(m), out["b_to_a"].get(m)
        mean[m] = (a + b) / 2.0 if a is not None and b is not None else None
        if mean[m] is None:
            mean["null_reasons"][m] = "undefined in at least one direction"
    out["mean"] = mean
    return out


def _failures_as_wrong(
    view: _View, y: np.ndarray, n_boot: int, seed: int, level: float
) -> dict[str, Any]:
    """Every pair counts; a pair without an answer is a wrong decision and a worst-ranked score."""
    answered = view.answered
    s_ok = view.score[answered & np.isfinite(view.score)]
    lo = min(0.0, float(s_ok.min()) if s_ok.size else 0.0) - 1.0
    hi = max(view.scale, float(s_ok.max()) if s_ok.size else view.scale) + 1.0
    s = np.where(answered, view.score, np.where(y == 1, lo, hi))
    pred = None
    if view.pred is not None:
        pred = np.where(answered, view.pred, y == 0)
    out = _block(y, s, pred)
    out["coverage"] = float(answered.mean()) if y.size else None
    out["n_failed"] = int((~answered).sum())
    out["rule"] = (
        "all pairs count; an unanswered pair is a wrong decision (same-person pairs "
        "rejected, different-person pairs accepted) and ranks as the worst score "
        "for its label in AUC / PR-AUC / EER / TAR"
    )
    out["ci"] = bootstrap_ci(y, s, pred, n_boot, seed, level=level, rates={"coverage": answered})
    return out


def _consistency(rows: _Rows, view: _View, pairs: _Pairs, triplets: np.ndarray) -> dict[str, Any]:
    ans = rows.take(rows.answered)
    same = _decide_or_none(ans.score, view.threshold, ans.decision == "same")
    out: dict[str, Any] = {
        "asked_both_orders": bool(np.any(rows.order == "ba")),
        "max_repeats": int(rows.repeat.max()) + 1 if rows.repeat.size else 0,
        "null_reasons": {},
    }
    if out["asked_both_orders"]:
        sel_ab = (ans.order == "ab") & (ans.repeat == 0)
        sel_ba = (ans.order == "ba") & (ans.repeat == 0)
        ab_ids, ba_ids = ans.pair_id[sel_ab], ans.pair_id[sel_ba]
        _, ia, ib = np.intersect1d(ab_ids, ba_ids, assume_unique=True, return_indices=True)
        sa = ans.score[sel_ab][ia]
        sb = ans.score[sel_ba][ib]
        da = same[sel_ab][ia] if same is not None else None
        db = same[sel_ba][ib] if same is not None else None
        out["symmetry"] = cons.symmetry(da, db, sa, sb)
    else:
        out["symmetry"] = None
        out["null_reasons"]["symmetry"] = "the run did not ask both orders"
    if out["max_repeats"] > 1:
        sel = ans.order == "ab"
        out["repeat_stability"] = cons.repeat_stability(
            ans.pair_id[sel], same[sel] if same is not None else None, ans.score[sel]
        )
    else:
        out["repeat_stability"] = None
        out["null_reasons"]["repeat_stability"] = "the run asked each pair once"
    if triplets.size == 0:
        out["transitivity"] = None
        out["null_reasons"]["transitivity"] = "the pair set has no triplets"
    elif view.pred is None:
        out["transitivity"] = None
        out["null_reasons"]["transitivity"] = "no decision threshold"
    else:
        ids = pairs.pair_id[view.answered]
        out["transitivity"] = cons.transitivity(triplets, ids, view.pred[view.answered])
    return out


def _system(
    name: str,
    entry: dict[str, Any],
    rows: _Rows,
    pairs: _Pairs,
    calib: np.ndarray,
    triplets: np.ndarray,
    n_boot: int,
    seed: int,
    level: float,
) -> tuple[dict[str, Any], _View, dict[str, Any]]:
    kind = str(entry.get("type", "lvlm"))
    scale = float(entry.get("scale") or DEFAULT_SCALE.get(kind, 1.0))
    y = pairs.label
    prim = _primary(rows, pairs)
    score = prim["score"]
    stated = prim["decision"] == "same"
    answered = (prim["status"] == "ok") & (
        np.isfinite(score) | (prim["decision"] == "same") | (prim["decision"] == "different")
    )
    score = np.where(answered, score, np.nan)
    choice = _choose_threshold(entry, kind, y, score, calib, answered)
    thr = choice["threshold"]
    pred = _decide_or_none(score, thr, stated)
    view = _View(name, kind, scale, score, stated, prim["status"], answered, thr, pred)

    out: dict[str, Any] = {
        "type": kind,
        "scale": scale,
        "threshold": thr,
        "threshold_normalised": thr / scale if thr is not None else None,
        "threshold_source": choice["source"],
    }
    if choice["source"] == "calibration_best_f1":
        out["threshold_calibration"] = {
            k: choice[k] for k in ("calibration_pairs", "calibration_f1")
        }
        out["threshold_note"] = (
            "chosen by best F1 on calibration half A, then applied to all answered pairs "
            "(half A included, so slightly optimistic; tuned_halves has held-out numbers)"
        )
    elif choice["source"] == "lvlm_default":
        out["threshold_note"] = "run.json records no threshold: the LVLM default 50 on 0-100"
    else:
        out["threshold_note"] = "the threshold recorded in run.json, on the system's own scale"
    out["info"] = _clean(entry)

    ya, sa = y[answered], score[answered]
    pa_ = pred[answered] if pred is not None else None
    n_answered = int(answered.sum())
    out.update(
        {
            "n_pairs": pairs.n,
            "n_answered": n_answered,
            "n_scored": int(np.isfinite(sa).sum()),
            "n_decision_only": int((~np.isfinite(sa)).sum()),
            "coverage": n_answered / pairs.n if pairs.n else None,
        }
    )
    head = _block(ya, sa, pa_, no_pred_reason=choice["reason"] or "no decision threshold")
    head.pop("n")
    reasons = head.pop("null_reasons")
    if pairs.n == 0:
        reasons["coverage"] = "the pair set is empty"
    if thr is None and choice["reason"]:
        reasons["threshold"] = choice["reason"]
    out.update(head)
    out["null_reasons"] = reasons
    out["ci"] = bootstrap_ci(ya, sa, pa_, n_boot, seed, level=level)

    out["confusion"] = ver.confusion(ya, pa_) if pa_ is not None else None
    scored = np.isfinite(sa)
    ys, ss = ya[scored], sa[scored]
    out["distributions"] = ver.score_distributions(ys, ss, scale)
    two_classes = ys.size > 0 and 0 < ys.sum() < ys.size
    out["curves"] = {
        "roc": ver.roc_curve_json(ys, ss) if two_classes else None,
        "pr": ver.pr_curve_json(ys, ss) if two_classes else None,
        "calibration": ver.calibration_bins(ys, ss / scale),
        "null_reasons": {} if two_classes else {"roc": "needs both classes among scored pairs"},
    }
    out["tuned_halves"] = _tuned_halves(view, y, calib)
    out["failures_as_wrong"] = _failures_as_wrong(view, y, n_boot, seed, level)

    if kind == "lvlm":
        fa, fr = fail.confident_wrong(y, score, scale, ok=answered)
    else:
        fa = fr = None
    counts = fail.failure_counts(prim["status"], fa, fr)
    # The headline counts use each pair's primary answer; calls made for the symmetry and
    # repeat checks can fail too, and are counted here so that no refusal goes unseen.
    statuses, numbers = np.unique(np.asarray(rows.status, dtype=str), return_counts=True)
    counts["all_calls"] = {str(k): int(v) for k, v in zip(statuses, numbers, strict=True)}
    out["failures"] = counts
    categories = {k: prim["status"] == k for k in (*fail.CATASTROPHIC, "api_error")}
    categories["budget_exceeded"] = prim["status"] == "budget_exceeded"
    if fa is not None and fr is not None:
        categories["confident_false_accept"] = fa
        categories["confident_false_reject"] = fr
    example_rows = {
        "pair_id": pairs.pair_id,
        "path_a": pairs.path_a,
        "path_b": pairs.path_b,
        "label": y,
        "score": prim["score"],
        "decision": prim["decision"],
        "status": prim["status"],
        "raw": prim["raw"],
        "error": prim["error"],
        "reasons": prim["reasons"],
    }
    by_id = np.argsort(pairs.pair_id, kind="stable")  # examples in pair_id order
    examples = fail.failure_examples(
        {k: m[by_id] for k, m in categories.items()},
        {k: v[by_id] for k, v in example_rows.items()},
        k=EXAMPLES_PER_CATEGORY,
        text_limit=TEXT_LIMIT,
    )
    out["consistency"] = _consistency(rows, view, pairs, triplets)
    out["costs"] = cost_summary(
        pair_ids=rows.pair_id,
        status=rows.status,
        cached=rows.cached,
        attempts=rows.attempts,
        tokens_in=rows.tokens_in,
        tokens_out=rows.tokens_out,
        cost_usd=rows.cost,
        latency_s=rows.latency,
    )
    out["retrieval"] = None
    return out, view, examples


# --- across systems -----------------------------------------------------------------


def _comparisons(
    views: list[_View], y: np.ndarray, n_boot: int, seed: int, level: float
) -> list[dict[str, Any]]:
    out = []
    for a, b in combinations(views, 2):
        entry: dict[str, Any] = {"a": a.name, "b": b.name, "null_reasons": {}}
        both = a.answered & b.answered
        if a.pred is None or b.pred is None:
            entry["mcnemar"] = None
            entry["null_reasons"]["mcnemar"] = "a system has no decision threshold"
        else:
            entry["mcnemar"] = mcnemar(
                a.pred[both] == (y[both] == 1), b.pred[both] == (y[both] == 1)
            )
        scored = both & np.isfinite(a.score) & np.isfinite(b.score)
        entry["auc_diff"] = paired_bootstrap_auc(
            y[scored], a.score[scored], b.score[scored], n_boot, seed, level
        )
        out.append(entry)
    return out


def _triplets(pairs: _Pairs, run: dict[str, Any]) -> np.ndarray:
    raw = pairs.meta.get("triplets")
    if raw is None:
        raw = (run.get("pairs") or {}).get("triplets")
    if not raw:
        return np.zeros((0, 3), dtype=np.int64)
    try:
        arr = np.asarray(raw, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise UserError(
            "pairs.parquet: meta 'triplets' must be a list of [ab, bc, ac] pair ids; "
            "re-create the pair set"
        ) from exc
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise UserError(
            "pairs.parquet: meta 'triplets' must be a list of [ab, bc, ac] pair ids; "
            "re-create the pair set"
        )
    return arr


def _retrieval(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "retrieval.json"
    if not path.is_file():
        return {}
    data = _read_json(path, "retrieval.json")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected an object {{system: {{rank1, mAP, ...}}}}; re-run")
    return _clean(data)


def _protocol(run_cfg: dict, n_boot: int, seed: int, level: float, calib: np.ndarray) -> dict:
    return {
        "primary_answer": "the scores row with order 'ab' and repeat 0; other rows feed "
        "consistency only",
        "answered": "status 'ok' with a score, or with a stated 'same'/'different' decision",
        "decision_rule": "same when score >= threshold, on the system's own scale; "
        "answers with no score use the system's stated decision (and are left out of "
        "AUC, PR-AUC, EER, TAR and score distributions)",
        "thresholds": "LVLM: the recorded threshold (default 50 on 0-100); embedder with no "
        "recorded threshold: best F1 on calibration half A",
        "split": {
            "seed": seed,
            "rule": "per label, pairs ordered by a keyed hash of (pair_id, seed) alternate "
            "between half A (calibration) and half B (held out)",
            "n_half_a": int(calib.sum()),
            "n_half_b": int((~calib).sum()),
        },
        "bootstrap": {"resamples": n_boot, "seed": seed, "level": level, "method": "percentile"},
        "pr_auc": "average precision (sklearn.metrics.average_precision_score)",
        "auc": "ROC AUC (sklearn.metrics.roc_auc_score)",
        "eer": "linear interpolation on the ROC curve where FPR = 1 - TPR",
        ver.TAR_KEY: "largest TPR among ROC points with FPR <= 0.01, no interpolation",
        "confident_wrong": "LVLM judges only: score/scale*100 >= 90 on a different-person "
        "pair, or <= 10 on a same-person pair",
        "mcnemar": "exact two-sided binomial test on discordant pairs, pairs both answered",
        "auc_diff": "paired bootstrap (same draws for both systems) on pairs both scored",
        "config_bootstrap": run_cfg.get("bootstrap"),
    }


def _int_setting(value: Any, name: str, run_dir: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"{run_dir / 'run.json'}: config.{name} must be a whole number >= 0")
    return value


def compute_metrics(
    run_dir: str | Path,
    *,
    bootstrap: int | None = None,
    seed: int | None = None,
    level: float = 0.95,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Everything metrics.json holds, for the run in ``run_dir`` (see docs/metrics.md).

    ``bootstrap`` and ``seed`` default to the run config's ``bootstrap`` and ``seed``.
    """
    run_dir = Path(run_dir)
    manifest = run_dir / "run.json"
    if not manifest.is_file():
        raise UserError(f"{manifest}: not found; pass a run directory made by `reidbench run`")
    run = _read_json(manifest, "run manifest")
    if not isinstance(run, dict) or not isinstance(run.get("systems"), list):
        raise UserError(f"{manifest}: no 'systems' list; re-run `reidbench run` into this folder")
    cfg = run.get("config") or {}
    n_boot = _int_setting(
        cfg.get("bootstrap", 1000) if bootstrap is None else bootstrap, "bootstrap", run_dir
    )
    seed = _int_setting(cfg.get("seed", 0) if seed is None else seed, "seed", run_dir)

    pairs = _read_pairs(run_dir)
    scores = _read_scores(run_dir, pairs)
    entries = {str(e.get("name")): e for e in run["systems"] if isinstance(e, dict)}
    stray = [name for name in scores if name not in entries]
    if stray:
        raise UserError(
            f"{run_dir / 'scores.parquet'}: rows for systems {stray} that run.json does not "
            "list; the files come from different runs"
        )
    calib = calibration_mask(pairs.pair_id, pairs.label, seed)
    triplets = _triplets(pairs, run)
    retrieval = _retrieval(run_dir)

    prog = progress or NullProgress()
    n_sys = len(entries)
    prog.start("metrics", total=n_sys + n_sys * (n_sys - 1) // 2)
    systems: dict[str, Any] = {}
    views: list[_View] = []
    examples: dict[str, Any] = {}
    empty = _empty_rows()
    try:
        for name, entry in entries.items():
            rows = scores.get(name, empty)
            if isinstance(entry.get("asked"), dict):  # a live cascade asked this LVLM a subset
                keep = np.isin(pairs.pair_id, rows.pair_id)
                args = (name, entry, rows, pairs, calib, triplets, n_boot, seed, level)
                block, view, ex = _system_on(keep, *args)
                block["evaluated_on"] = "pairs asked: " + str(entry["asked"].get("rule", ""))
            else:
                block, view, ex = _system(
                    name, entry, rows, pairs, calib, triplets, n_boot, seed, level
                )
            if name in retrieval:
                block["retrieval"] = retrieval[name]
            systems[name] = block
            views.append(view)
            examples[name] = ex
            prog.advance(1)
        fused = _fused_systems(run_dir, pairs, calib, triplets, n_boot, seed, level, views)
        for name, block, view, ex in fused["systems"]:
            systems[name] = block
            views.append(view)
            examples[name] = ex
        comparisons = _comparisons(views, pairs.label, n_boot, seed, level)
        prog.advance(len(comparisons))
    finally:
        prog.finish()

    counts = {name: block["failures"] for name, block in systems.items()}
    pairs_meta = _clean({k: v for k, v in pairs.meta.items() if k != "triplets"})
    out: dict[str, Any] = {
        "format": METRICS_FORMAT,
        "reidbench_version": __version__,
        "run": {
            "name": cfg.get("name"),
            "created": run.get("created"),
            "run_reidbench_version": run.get("reidbench_version"),
            "synthetic": bool((run.get("dataset") or {}).get("synthetic", False)),
            "dataset": _clean(run.get("dataset") or {}),
            "pairs": {
                "n_pairs": pairs.n,
                "n_same": int(pairs.label.sum()),
                "n_different": int(pairs.n - pairs.label.sum()),
                "n_triplets": int(triplets.shape[0]),
                "meta": pairs_meta,
            },
            "protocol": _protocol(cfg, n_boot, seed, level, calib),
        },
        "systems": systems,
        "comparisons": comparisons,
        "failures": {"ranking": fail.rank_systems(counts), "examples": examples},
    }
    other = {k: v for k, v in retrieval.items() if k not in systems}
    if other:
        out["retrieval_other"] = other
    for key in ("fusion", "cascade", "fusion_skipped"):
        if fused[key]:
            out[key] = _clean(fused[key])
    rerank = run_dir / "rerank.json"
    if rerank.is_file():
        out["rerank"] = _clean(_read_json(rerank, "rerank.json"))
    return out


# --- fused systems and subsets (records written by reidbench.fusion; docs/fusion.md) ---------


def _subset_pairs(pairs: _Pairs, keep: np.ndarray) -> _Pairs:
    ids = pairs.pair_id[keep]
    return _Pairs(
        pair_id=ids,
        label=pairs.label[keep],
        path_a=pairs.path_a[keep],
        path_b=pairs.path_b[keep],
        meta=pairs.meta,
        sorter=np.argsort(ids, kind="stable"),
    )


def _expand_view(view: _View, keep: np.ndarray, n: int) -> _View:
    """A subset's view laid over all pairs: pairs outside the subset are not answered."""

    def full(values: np.ndarray, fill: Any) -> np.ndarray:
        out = np.full(n, fill, dtype=values.dtype)
        out[keep] = values
        return out

    return _View(
        view.name,
        view.kind,
        view.scale,
        full(view.score, np.nan),
        full(view.stated_same, False),
        full(view.status, "not_evaluated"),
        full(view.answered, False),
        view.threshold,
        None if view.pred is None else full(view.pred, False),
    )


def _take_view(view: _View, mask: np.ndarray) -> _View:
    return _View(
        view.name,
        view.kind,
        view.scale,
        view.score[mask],
        view.stated_same[mask],
        view.status[mask],
        view.answered[mask],
        view.threshold,
        None if view.pred is None else view.pred[mask],
    )


SUBSET_TUNED_NOTE = (
    "not applicable: this system is evaluated on a subset of held-out pairs only; its "
    "threshold was already chosen on calibration half A"
)


def _system_on(keep: np.ndarray, name, entry, rows, pairs, calib, triplets, n_boot, seed, level):
    """`_system` over the pairs in `keep` only; the view comes back laid over all pairs."""
    sub = _subset_pairs(pairs, keep)
    rows = rows.take(np.isin(rows.pair_id, sub.pair_id))
    rows.row = sub.rows_of(rows.pair_id, name)
    block, view, ex = _system(name, entry, rows, sub, calib[keep], triplets, n_boot, seed, level)
    block["tuned_halves"]["note"] = SUBSET_TUNED_NOTE
    return block, _expand_view(view, keep, pairs.n), ex


def _fused_systems(run_dir, pairs, calib, triplets, n_boot, seed, level, views) -> dict:
    from reidbench.fusion.records import load_records  # the fusion stage builds on metrics

    out: dict[str, Any] = {"systems": [], "fusion": {}, "cascade": {}, "fusion_skipped": []}
    records, out["fusion_skipped"] = load_records(run_dir, seed=seed)
    by_name = {v.name: v for v in views}
    for record, table in records:
        name = str(record["name"])
        if name in by_name:
            out["fusion_skipped"].append(
                {"name": name, "reason": "a system of the run has the same name"}
            )
            continue
        rows = _rows_by_system(table, pairs, run_dir / str(record.get("rows_file")))
        rows = rows.get(name, _empty_rows())
        keep = np.isin(pairs.pair_id, rows.pair_id)
        entry = record["entry"]
        args = (name, entry, rows, pairs, calib, triplets, n_boot, seed, level)
        block, view, ex = _system_on(keep, *args)
        block["evaluated_on"] = "held-out"
        block["threshold_source"] = "fusion"
        block["threshold_calibration"] = {
            "calibration_pairs": record["split"]["n_calibration"],
            "calibration_f1": record["logistic"]["threshold"]["calibration_f1"]
            if record["method"] == "logistic"
            else (record["cascade"]["operating_point"].get("calibration") or {}).get("f1"),
        }
        block["threshold_note"] = (
            "fused probability >= threshold; threshold chosen by best F1 on calibration half A"
            if record["method"] == "logistic"
            else "cascade decision: score >= 0.5 (ReID decision outside the band, LVLM inside)"
        )
        out["systems"].append((name, block, view, ex))
        summary = {k: block.get(k) for k in (*METRIC_NAMES, "n_answered", "threshold")}
        summary["ci"] = block["ci"]["intervals"]
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
            versus = _versus_singles(
                view, record["systems"], by_name, pairs.label, n_boot, seed, level
            )
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


def _versus_singles(fused: _View, names, by_name, y, n_boot, seed, level) -> dict[str, Any]:
    """Each fused system alone on the same held-out pairs, and the fused one vs the best."""
    held = fused.answered
    singles: dict[str, Any] = {}
    for s in names:
        v = by_name[s]
        m = held & v.answered
        pred = v.pred[m] if v.pred is not None else None
        block = _block(y[m], v.score[m], pred)
        block.update(
            n_pairs=int(held.sum()),
            n_answered=int(m.sum()),
            coverage=float(m.sum() / held.sum()) if held.any() else None,
            threshold=v.threshold,
            ci=bootstrap_ci(y[m], v.score[m], pred, n_boot, seed, level=level)["intervals"],
        )
        faw = _failures_as_wrong(_take_view(v, held), y[held], n_boot, seed, level)
        block["failures_as_wrong"] = {
            k: faw.get(k) for k in (*METRIC_NAMES, "coverage", "n_failed", "rule")
        }
        singles[s] = block
    ranked = sorted(names, key=lambda s: -1.0 if singles[s]["auc"] is None else singles[s]["auc"])
    best = ranked[-1]
    b = by_name[best]
    m = held & b.answered & np.isfinite(b.score)
    versus: dict[str, Any] = {"a": fused.name, "b": best, "null_reasons": {}}
    if b.pred is None or fused.pred is None:
        versus["mcnemar"] = None
        versus["null_reasons"]["mcnemar"] = "a system has no decision threshold"
    else:
        versus["mcnemar"] = mcnemar(fused.pred[m] == (y[m] == 1), b.pred[m] == (y[m] == 1))
    versus["auc_diff"] = paired_bootstrap_auc(y[m], fused.score[m], b.score[m], n_boot, seed, level)
    versus["pairs"] = "held-out pairs the best single system answered with a score"
    return {
        "singles": singles,
        "best_single": best,
        "best_single_rule": "the fused system with the highest AUC on the held-out pairs it "
        "answered (chosen on held-out: favours the single system, so the test is conservative)",
        "vs_best": versus,
    }


def _empty_rows() -> _Rows:
    z = np.zeros(0)
    o = np.zeros(0, dtype=object)
    i = np.zeros(0, dtype=np.int64)
    return _Rows(
        pair_id=i,
        row=i,
        score=z,
        decision=o,
        status=o,
        order=o,
        repeat=i,
        latency=z,
        tokens_in=z,
        tokens_out=z,
        cost=z,
        raw=o,
        reasons=o,
        error=o,
        cached=np.zeros(0, dtype=bool),
        attempts=z,
    )


def metrics_json(metrics: dict[str, Any]) -> str:
    """Strict JSON text (raises on NaN/Infinity, which compute_metrics never produces)."""
    return json.dumps(metrics, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def write_metrics(run_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Compute the metrics of ``run_dir`` and write ``run_dir/metrics.json`` atomically."""
    metrics = compute_metrics(run_dir, **kwargs)
    write_text_atomic(Path(run_dir) / "metrics.json", metrics_json(metrics))
    return metrics
