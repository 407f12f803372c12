"""Symmetry, repeat stability and transitivity of one system's answers."""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics import consistency as cons
from reidbench.metrics.run.thresholds import Decided, decide_or_none
from reidbench.rundir import Pairs, Rows


def consistency(rows: Rows, view: Decided, pairs: Pairs, triplets: np.ndarray) -> dict[str, Any]:
    ans = rows.take(rows.answered)
    same = decide_or_none(ans.score, view.threshold, ans.decision == "same")
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
