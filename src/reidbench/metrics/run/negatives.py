"""Metrics split by negative kind: random negatives vs negatives mined by a model
(issue #9 item 6). Mined negatives are the pairs the mining model finds most similar, so
they are hardest for that model above all: a system that mined them is measured against
its own worst cases, and the report warns when it is among the systems compared."""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics.run.blocks import block
from reidbench.metrics.run.thresholds import Decided
from reidbench.rundir import Pairs


def mined_mask(pairs: Pairs) -> tuple[np.ndarray, str | None]:
    """(mask of mined negatives, the miner's name), from the pair set's provenance."""
    hard = pairs.meta.get("hard_negatives")
    if not isinstance(hard, dict) or not hard.get("pair_ids"):
        return np.zeros(pairs.n, dtype=bool), None
    ids = np.asarray(hard["pair_ids"], dtype=np.int64)
    return np.isin(pairs.pair_id, ids) & (pairs.label == 0), str(hard.get("miner"))


def by_negative_kind(view: Decided, pairs: Pairs, mined: np.ndarray, miner: str) -> dict:
    """Every metric on positives + random negatives, and on positives + mined negatives."""
    y = pairs.label
    out: dict[str, Any] = {"miner": miner}
    for key, neg in (("random", (y == 0) & ~mined), ("mined", mined)):
        m = view.answered & ((y == 1) | neg)
        pred = view.pred[m] if view.pred is not None else None
        b = block(y[m], view.score[m], pred)
        b["n_negatives"] = int((neg & view.answered).sum())
        out[key] = b
    return out


def miner_warnings(miner: str | None, entries: dict[str, dict[str, Any]]) -> list[str]:
    """A warning per compared system that is (or runs the same model as) the miner."""
    if not miner:
        return []
    hits = [
        name
        for name, e in entries.items()
        if miner in (name, str(e.get("model", "")), str(e.get("name", "")))
    ]
    return [
        f"{name} mined this pair set's hard negatives ({miner}): its numbers are measured "
        "against its own hardest cases; compare systems on `by_negative_kind.random`"
        for name in hits
    ]
