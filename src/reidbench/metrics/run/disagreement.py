"""Where an LVLM and a ReID model disagree (issue #15): the 2x2 agreement table of every
(LVLM, ReID) pair of systems on identical pairs, its paired tests, and the pairs themselves.

This is the heart of the fusion argument: fusing two systems can only help on the pairs
where one is right and the other wrong. Each system decides at its own cross-fitted
threshold; an abstention (refusal, parse error, ...) counts as wrong here, so a system
cannot look complementary by refusing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics._util import fnum
from reidbench.metrics.run.abstain import confidence, meant_to_answer
from reidbench.metrics.run.blocks import pair_ids_digest
from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.metrics.run.thresholds import Decided
from reidbench.rundir import Pairs

EXAMPLES_PER_SIDE = 8
RULE = (
    "identical pairs both systems were meant to answer; each system decides at its own "
    "cross-fitted threshold; an abstention counts as wrong"
)
EXAMPLE_ORDER = (
    "the pairs where one system is right and the other wrong, the wrong system's most "
    "confident errors (score farthest from its threshold) first, abstentions last"
)


def correct(d: Decided, y: np.ndarray) -> np.ndarray:
    """Per pair: the system answered and its decision matches the truth."""
    assert d.pred is not None
    return np.asarray(d.answered, dtype=bool) & (np.asarray(d.pred, dtype=bool) == (y == 1))


def _threshold(d: Decided, i: int) -> float | None:
    if d.pair_threshold is not None:
        return fnum(d.pair_threshold[i])
    return fnum(d.threshold)


def _example(i: int, pairs: Pairs, lvlm: Decided, reid: Decided) -> dict[str, Any]:
    return {
        "pair_id": int(pairs.pair_id[i]),
        "path_a": str(pairs.path_a[i]),
        "path_b": str(pairs.path_b[i]),
        "label": int(pairs.label[i]),
        "lvlm_score": fnum(lvlm.score[i]),
        "lvlm_status": str(lvlm.status[i]),
        "lvlm_same": bool(lvlm.pred[i]) if lvlm.answered[i] and lvlm.pred is not None else None,
        "lvlm_threshold": _threshold(lvlm, i),
        "reid_score": fnum(reid.score[i]),
        "reid_status": str(reid.status[i]),
        "reid_same": bool(reid.pred[i]) if reid.answered[i] and reid.pred is not None else None,
        "reid_threshold": _threshold(reid, i),
    }


def _examples(mask: np.ndarray, wrong: Decided, k: int) -> np.ndarray:
    """Rows of `mask`, the wrong system's most confident errors first (ties by row)."""
    rows = np.flatnonzero(mask)
    conf = confidence(wrong)[rows]
    conf = np.where(wrong.answered[rows], conf, -np.inf)
    order = np.lexsort((rows, -np.nan_to_num(conf, neginf=-1e300)))
    return rows[order][:k]


def agreement(
    lvlm: Decided, reid: Decided, pairs: Pairs, boot: Bootstrap, *, k: int = EXAMPLES_PER_SIDE
) -> dict[str, Any]:
    """The 2x2 table, exact and dependence-aware McNemar, the paired accuracy difference
    (LVLM minus ReID, paired bootstrap) and up to k disagreeing pairs each way."""
    y = pairs.label
    out: dict[str, Any] = {"lvlm": lvlm.name, "reid": reid.name, "rule": RULE}
    if lvlm.pred is None or reid.pred is None:
        out["null_reason"] = "a system has no decision threshold"
        return out
    m = meant_to_answer(lvlm, reid)
    cl, cr = correct(lvlm, y), correct(reid, y)
    a, b = cl[m], cr[m]
    out["n"] = int(m.sum())
    out["pair_ids_sha256"] = pair_ids_digest(pairs.pair_id[m])
    out["table"] = {
        "both_right": int(np.sum(a & b)),
        "lvlm_right_only": int(np.sum(a & ~b)),
        "reid_right_only": int(np.sum(~a & b)),
        "both_wrong": int(np.sum(~a & ~b)),
    }
    out["accuracy"] = {"lvlm": fnum(a.mean()) if a.size else None}
    out["accuracy"]["reid"] = fnum(b.mean()) if b.size else None
    out["mcnemar_exact"] = boot.exact_mcnemar(a, b)
    out["mcnemar"] = boot.mcnemar(a, b, at=m)
    out["accuracy_diff"] = boot.paired_mean_diff(a, b, at=m)
    out["accuracy_diff"]["direction"] = "LVLM minus ReID"
    out["examples"] = {
        "lvlm_right": [
            _example(int(i), pairs, lvlm, reid) for i in _examples(m & cl & ~cr, reid, k)
        ],
        "reid_right": [
            _example(int(i), pairs, lvlm, reid) for i in _examples(m & ~cl & cr, lvlm, k)
        ],
    }
    out["examples_order"] = EXAMPLE_ORDER
    return out


def disagreements(views: list[Decided], pairs: Pairs, boot: Bootstrap) -> list[dict[str, Any]]:
    """One agreement block per (LVLM, ReID) pair of systems in the run."""
    n = pairs.n
    lvlms = [v for v in views if v.kind == "lvlm" and v.score.size == n]
    reids = [v for v in views if v.kind == "reid" and v.score.size == n]
    return [agreement(lv, r, pairs, boot) for lv in lvlms for r in reids]
