"""Calls, tokens, USD and latency of one system over every row it wrote."""

from __future__ import annotations

from typing import Any

from reidbench.metrics.costs import cost_summary
from reidbench.rundir import Rows


def costs(rows: Rows) -> dict[str, Any]:
    return cost_summary(
        pair_ids=rows.pair_id,
        status=rows.status,
        cached=rows.cached,
        attempts=rows.attempts,
        tokens_in=rows.tokens_in,
        tokens_out=rows.tokens_out,
        cost_usd=rows.cost,
        latency_s=rows.latency,
    )
