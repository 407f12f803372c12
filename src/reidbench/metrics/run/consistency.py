"""Symmetry, repeat stability and transitivity of one system's answers."""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics import consistency as cons
from reidbench.metrics.run.thresholds import Decided
from reidbench.rundir import Pairs, Rows


def consistency(rows: Rows, view: Decided, pairs: Pairs, triplets: np.ndarray) -> dict[str, Any]:
    ans = rows.take(rows.answered)
    same = view.decide_rows(ans.score, ans.decision == "same", ans.row)
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
        asked_ab = rows.pair_id[(rows.order == "ab") & (rows.repeat == 0)]
        asked_ba = rows.pair_id[(rows.order == "ba") & (rows.repeat == 0)]
        asked = np.intersect1d(asked_ab, asked_ba)
        _with_abstentions(out["symmetry"], asked.size, out["symmetry"].get("disagreements"))
    else:
        out["symmetry"] = None
        out["null_reasons"]["symmetry"] = "the run did not ask both orders"
    if out["max_repeats"] > 1:
        sel = ans.order == "ab"
        out["repeat_stability"] = cons.repeat_stability(
            ans.pair_id[sel], same[sel] if same is not None else None, ans.score[sel]
        )
        rs = out["repeat_stability"]
        ids, counts = np.unique(rows.pair_id[rows.order == "ab"], return_counts=True)
        flipped = rs.get("flipped_pairs")
        _with_abstentions(rs, int((counts >= 2).sum()), flipped, agreement=True)
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


PARTIAL_RULE = (
    "pairs asked in every order (or repeat) count; a pair answered in one and not in the "
    "other (a refusal, an error) counts as inconsistent"
)


def _with_abstentions(
    block: dict[str, Any], n_asked: int, n_bad: int | None, *, agreement: bool = False
) -> None:
    """Add the rate over every pair asked, where a partly answered pair is inconsistent
    (issue #9 item 7): otherwise answering one order and refusing the other is never seen."""
    n_full = int(block.get("n_pairs") or 0)
    partial = max(0, n_asked - n_full)
    block["n_asked"] = n_asked
    block["n_partly_answered"] = partial
    key = "decision_agreement_all_asked" if agreement else "disagreement_rate_all_asked"
    if n_bad is None or n_asked == 0:
        block[key] = None
        block["null_reasons"][key] = "no decisions or no pair asked more than once"
        return
    bad = (n_bad + partial) / n_asked
    block[key] = 1.0 - bad if agreement else bad
    block["all_asked_rule"] = PARTIAL_RULE
