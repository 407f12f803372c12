"""Catastrophic answers: refusals, safety blocks, parse errors, and confident wrong answers.

A confident wrong answer is a score of at least 90 on a different-person pair
(confident false accept) or at most 10 on a same-person pair (confident false
reject), on the 0-100 scale an LVLM answers on (``score / scale * 100`` for
any other scale). It is counted for LVLM judges only: an embedder's
``(cos + 1) / 2`` is a similarity, not a confidence, and often sits in a narrow
band (a handcrafted descriptor on the demo data scores every pair above 0.5 and
decides "same" above 0.95), so the 90/10 cut-offs would call ordinary
different-person pairs "confident" mistakes. Systems are ranked by the number
of catastrophic answers: refusals + safety blocks + parse errors + confident
wrong answers (where counted). API errors, budget stops and missing rows are
counted but not ranked: they describe the run, not the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics._util import fnum

__all__ = [
    "CATASTROPHIC",
    "CONFIDENT_HIGH",
    "CONFIDENT_LOW",
    "confident_wrong",
    "failure_counts",
    "failure_examples",
    "rank_systems",
]

CONFIDENT_HIGH = 90.0
CONFIDENT_LOW = 10.0
CATASTROPHIC = ("refusal", "safety_block", "parse_error")
CONFIDENT = ("confident_false_accept", "confident_false_reject")
RUN_PROBLEMS = ("api_error", "budget_exceeded", "missing")


def confident_wrong(
    y_true: np.ndarray, scores: np.ndarray, scale: float, ok: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Masks of confident false accepts and confident false rejects (NaN scores never count)."""
    y = np.asarray(y_true).astype(np.int64)
    pct = np.asarray(scores, dtype=np.float64) / float(scale) * 100.0
    good = np.isfinite(pct) if ok is None else np.isfinite(pct) & np.asarray(ok, dtype=bool)
    with np.errstate(invalid="ignore"):
        fa = good & (y == 0) & (pct >= CONFIDENT_HIGH)
        fr = good & (y == 1) & (pct <= CONFIDENT_LOW)
    return fa, fr


def failure_counts(
    status: np.ndarray, false_accept: np.ndarray | None, false_reject: np.ndarray | None
) -> dict:
    """Counts per status (over primary answers) and the catastrophic total.

    Pass None for the confident-wrong masks of a system they do not apply to
    (embedders): those counts are then null and left out of the total.
    """
    st = np.asarray(status, dtype=object)
    n = int(st.size)
    values, freq = np.unique(st, return_counts=True)
    by_status = {str(k): int(v) for k, v in zip(values, freq, strict=True)}
    counts: dict[str, int | None] = {k: by_status.get(k, 0) for k in (*CATASTROPHIC, *RUN_PROBLEMS)}
    counted = false_accept is not None and false_reject is not None
    if false_accept is not None and false_reject is not None:
        counts["confident_false_accept"] = int(np.sum(false_accept))
        counts["confident_false_reject"] = int(np.sum(false_reject))
    else:
        counts["confident_false_accept"] = counts["confident_false_reject"] = None
    catastrophic = sum(counts[k] or 0 for k in (*CATASTROPHIC, *CONFIDENT))
    asked = n - by_status.get("budget_exceeded", 0) - by_status.get("missing", 0)
    return {
        "n_pairs": n,
        "n_asked": asked,
        "by_status": by_status,
        **counts,
        "catastrophic": catastrophic,
        "catastrophic_rate": fnum(catastrophic / asked) if asked else None,
        "rate_denominator": "pairs asked (not budget_exceeded, not missing)",
        "confident_counted": counted,
        "confident_cutoffs": {
            "high": CONFIDENT_HIGH,
            "low": CONFIDENT_LOW,
            "on": "score / scale * 100",
        },
        "null_reasons": {}
        if counted
        else {
            "confident_false_accept": "not counted for embedders: a similarity is not a confidence",
            "confident_false_reject": "not counted for embedders: a similarity is not a confidence",
        },
    }


def _clip(text: Any, limit: int) -> tuple[str | None, bool]:
    if text is None:
        return None, False
    s = str(text)
    return (s[:limit], True) if len(s) > limit else (s, False)


def failure_examples(
    categories: dict[str, np.ndarray],
    rows: dict[str, np.ndarray],
    *,
    k: int = 12,
    text_limit: int = 500,
) -> dict[str, list[dict[str, Any]]]:
    """The first k rows (in the given row order) of each category, as JSON-able dicts.

    ``rows`` holds aligned arrays: pair_id, path_a, path_b, label, score,
    decision, status, raw, error, reasons. Text is truncated, never escaped
    (the report escapes it).
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for name, mask in categories.items():
        items = []
        for i in np.flatnonzero(np.asarray(mask, dtype=bool))[:k]:
            raw, raw_cut = _clip(rows["raw"][i], text_limit)
            err, err_cut = _clip(rows["error"][i], text_limit)
            reasons, _ = _clip(rows["reasons"][i], text_limit)
            items.append(
                {
                    "pair_id": int(rows["pair_id"][i]),
                    "path_a": str(rows["path_a"][i]),
                    "path_b": str(rows["path_b"][i]),
                    "label": int(rows["label"][i]),
                    "score": fnum(rows["score"][i]),
                    "decision": rows["decision"][i],
                    "status": rows["status"][i],
                    "raw": raw,
                    "raw_truncated": raw_cut,
                    "error": err,
                    "error_truncated": err_cut,
                    "reasons": reasons,
                }
            )
        out[name] = items
    return out


def rank_systems(counts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Systems ordered by catastrophic rate (per pair asked; fewest first), so a system
    asked fewer pairs is not ranked better for it; ties share a rank."""

    def rate(name: str) -> float:
        r = counts[name].get("catastrophic_rate")
        return float(r) if r is not None else float("inf")

    order = sorted(counts, key=lambda name: (rate(name), counts[name]["catastrophic"], name))
    ranking = []
    prev, rank = None, 0
    for pos, name in enumerate(order, start=1):
        c = counts[name]
        if rate(name) != prev:
            rank, prev = pos, rate(name)
        ranking.append(
            {
                "rank": rank,
                "system": name,
                "catastrophic": c["catastrophic"],
                "catastrophic_rate": c["catastrophic_rate"],
                "n_asked": c["n_asked"],
                **{key: c[key] for key in (*CATASTROPHIC, *CONFIDENT)},
                "confident_counted": c["confident_counted"],
                "budget_limited": c["budget_exceeded"] > 0 or c["missing"] > 0,
            }
        )
    return ranking
