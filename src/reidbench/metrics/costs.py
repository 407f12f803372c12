"""Cost and time per system, from every row of the scores table (all orders and repeats).

Two views, because a resumed or cached run pays less than its answers cost:
- ``this_run``: what this run paid: calls = sum of ``attempts`` over rows not
  served from the response cache (retries included), tokens and USD over the
  same rows;
- ``answers``: what the answers cost however they were obtained: tokens and USD
  over all rows (the cache keeps each answer's original usage and cost).
``usd_per_1000_pairs`` uses ``answers`` USD divided by the number of distinct
pairs the system was asked about, so a protocol that asks both orders or
repeats costs more per pair, as it should. Latency percentiles are over rows
with status ``ok`` and a recorded latency, cached ones included (the response
cache keeps each answer's original latency, so a resumed run still reports the
model's speed); numpy's default linear interpolation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reidbench.metrics._util import fnum

__all__ = ["cost_summary"]


def _sum(values: np.ndarray, mask: np.ndarray) -> float:
    v = np.asarray(values, dtype=np.float64)[mask]
    return float(np.nansum(v)) if v.size else 0.0


def cost_summary(
    *,
    pair_ids: np.ndarray,
    status: np.ndarray,
    cached: np.ndarray,
    attempts: np.ndarray,
    tokens_in: np.ndarray,
    tokens_out: np.ndarray,
    cost_usd: np.ndarray,
    latency_s: np.ndarray,
) -> dict[str, Any]:
    """Calls, tokens, USD, latency p50/p95 and USD per 1,000 pairs (NaN inputs = not recorded)."""
    st = np.asarray(status, dtype=object)
    hit = np.asarray(cached, dtype=bool)
    fresh = ~hit
    every = np.ones(st.size, dtype=bool)
    n_distinct = int(np.unique(np.asarray(pair_ids, dtype=np.int64)).size)
    lat = np.asarray(latency_s, dtype=np.float64)
    timed = (st == "ok") & np.isfinite(lat)
    out: dict[str, Any] = {
        "rows": int(st.size),
        "cached_rows": int(hit.sum()),
        "distinct_pairs": n_distinct,
        "this_run": {
            "calls": round(_sum(attempts, fresh)),
            "tokens_in": round(_sum(tokens_in, fresh)),
            "tokens_out": round(_sum(tokens_out, fresh)),
            "usd": _sum(cost_usd, fresh),
        },
        "answers": {
            "tokens_in": round(_sum(tokens_in, every)),
            "tokens_out": round(_sum(tokens_out, every)),
            "usd": _sum(cost_usd, every),
        },
        "latency_n": int(timed.sum()),
        "latency_p50_s": None,
        "latency_p95_s": None,
        "usd_per_1000_pairs": None,
        "null_reasons": {},
    }
    if timed.any():
        p50, p95 = np.percentile(lat[timed], [50, 95])
        out["latency_p50_s"], out["latency_p95_s"] = fnum(p50), fnum(p95)
    else:
        out["null_reasons"]["latency_p50_s"] = "no ok row with a recorded latency"
    if n_distinct:
        out["usd_per_1000_pairs"] = out["answers"]["usd"] / n_distinct * 1000.0
    else:
        out["null_reasons"]["usd_per_1000_pairs"] = "no rows"
    return out
