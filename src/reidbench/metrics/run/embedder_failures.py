"""The worst errors of each ReID embedder (issue #15): its highest-scored different-person
pairs it accepted and its lowest-scored same-person pairs it rejected, at its cross-fitted
threshold. Embedders always answer and have no confidence, so the LVLM failure gallery
(refusals, confident wrong answers) never shows them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics._util import fnum
from reidbench.metrics.run.thresholds import Decided
from reidbench.rundir import Pairs

EXAMPLES_PER_KIND = 8
RULE = (
    "false accepts: different-person pairs decided same, highest score first; false rejects: "
    "same-person pairs decided different, lowest score first; each at the threshold that "
    "decided the pair (cross-fitted)"
)


def _ex(i: int, d: Decided, pairs: Pairs) -> dict[str, Any]:
    t = d.pair_threshold[i] if d.pair_threshold is not None else d.threshold
    return {
        "pair_id": int(pairs.pair_id[i]),
        "path_a": str(pairs.path_a[i]),
        "path_b": str(pairs.path_b[i]),
        "label": int(pairs.label[i]),
        "score": fnum(d.score[i]),
        "threshold": fnum(t),
    }


def worst_errors(d: Decided, pairs: Pairs, k: int = EXAMPLES_PER_KIND) -> dict[str, Any] | None:
    if d.pred is None:
        return None
    y = pairs.label
    ok = d.answered & np.isfinite(d.score)
    pred = np.asarray(d.pred, dtype=bool)
    fa = np.flatnonzero(ok & pred & (y == 0))
    fr = np.flatnonzero(ok & ~pred & (y == 1))
    fa = fa[np.lexsort((pairs.pair_id[fa], -d.score[fa]))][:k]
    fr = fr[np.lexsort((pairs.pair_id[fr], d.score[fr]))][:k]
    return {
        "n_false_accepts": int(np.sum(ok & pred & (y == 0))),
        "n_false_rejects": int(np.sum(ok & ~pred & (y == 1))),
        "n_different": int(np.sum(ok & (y == 0))),
        "n_same": int(np.sum(ok & (y == 1))),
        "false_accepts": [_ex(int(i), d, pairs) for i in fa],
        "false_rejects": [_ex(int(i), d, pairs) for i in fr],
    }


def embedder_failures(views: list[Decided], pairs: Pairs) -> dict[str, Any]:
    systems = {
        v.name: w
        for v in views
        if v.kind == "reid" and v.score.size == pairs.n and (w := worst_errors(v, pairs))
    }
    return {"rule": RULE, "systems": systems}
