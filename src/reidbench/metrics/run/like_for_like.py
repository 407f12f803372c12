"""Every system on the same pairs (issue #9 item 1).

A fused system is fitted on half A and reported on the held-out half B only, so putting
it next to a single system measured on all pairs compares different pairs (on the demo,
half B is easier). When fused or subset systems exist, this view measures **every**
system on the held-out pairs, and its paired tests run on identical pair ids; each
block carries a digest of the pair ids behind it, so a test can check them.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from reidbench.metrics.run.abstain import coverage_aware_block
from reidbench.metrics.run.blocks import block, pair_ids_digest
from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.metrics.run.comparisons import compare
from reidbench.metrics.run.thresholds import Decided
from reidbench.rundir import Pairs
from reidbench.rundir.halves import Halves

HELD_OUT_NOTE = (
    "every system on the held-out half B (identity-disjoint from calibration half A), "
    "where fused systems are measured; decisions of single systems at their cross-fitted "
    "threshold fitted on half A; coverage over the held-out pairs"
)


def held_out_view(
    views: list[Decided],
    pairs: Pairs,
    halves: Halves,
    boot: Bootstrap,
    kinds: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Every system measured on half B, and every pair of systems compared there."""
    y, held = pairs.label, halves.b
    n_held = int(held.sum())
    out: dict[str, Any] = {
        "note": HELD_OUT_NOTE,
        "n_pairs": n_held,
        "pair_ids_sha256": pair_ids_digest(pairs.pair_id[held]),
        "systems": {},
    }
    for v in views:
        m = held & v.answered
        pred = v.pred[m] if v.pred is not None else None
        b = block(y[m], v.score[m], pred)
        b.update(
            {
                "type": kinds.get(v.name, {}).get("type"),
                "costs": kinds.get(v.name, {}).get("costs"),
                "n_pairs": n_held,
                "n_answered": int(m.sum()),
                "coverage": float(m.sum() / n_held) if n_held else None,
                "pair_ids_sha256": pair_ids_digest(pairs.pair_id[m]),
                "ci": {"intervals": boot.ci(y[m], v.score[m], pred, at=m)["intervals"]},
            }
        )
        meant = held & (v.status != "not_evaluated")
        b["coverage_aware"] = coverage_aware_block(v.take(meant), y[meant], boot.subset(meant))
        out["systems"][v.name] = b
    out["comparisons"] = [
        compare(a, b, y, boot, pairs.pair_id, within=held) for a, b in combinations(views, 2)
    ]
    return out
