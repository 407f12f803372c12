"""The live cascade inside `reidbench run`: ask the LVLM only about pairs in the band.

The run scores every pair with the ReID system first. The band is then learnt from
the ReID scores of calibration half A (no LVLM answer and no held-out label is
needed) and the LVLM is asked only about **held-out** pairs inside it, most
uncertain first. Calibration pairs are never sent: the cascade's numbers are
reported on held-out pairs, and a calibration answer would be paid for and
never used. So a user pays for `fraction x n_held_out` calls, not for the pair set.

With `budget_usd_per_1k`, spending is capped at `budget x n_held_out / 1000` USD:
pairs are asked in chunks, most uncertain first; the recorded cost of every answer
so far (cached answers included, with their original cost, as every judge budget
counts them) counts against the cap, and each chunk runs with the remainder as its
`max_cost_usd`. A resumed run walks the same order, re-reads its answers from the
response cache and stops at the same place, so resuming never spends the budget twice.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reidbench.config import CascadeConfig, LVLMSystemConfig
from reidbench.errors import UserError
from reidbench.fusion.cascade import ReidCalibration, band_halfwidth, calibrate_reid
from reidbench.progress import NullProgress, Progress
from reidbench.rundir import SystemView, system_view
from reidbench.rundir.halves import identity_codes, identity_halves, image_codes
from reidbench.tables import SCORES_SCHEMA


@dataclass
class LivePlan:
    reid: ReidCalibration
    fraction: float | None
    halfwidth: float
    candidates: np.ndarray  # row indices into the pairs table, most uncertain first
    n_held_out: int
    budget_usd: float | None  # total cap for the held-out half

    def digest(self, pair_ids: np.ndarray) -> str:
        ids = np.asarray(pair_ids, dtype=np.int64)[self.candidates]
        return hashlib.sha256(ids.tobytes()).hexdigest()[:16]

    def manifest(self, asked: int, cascade: str) -> dict[str, Any]:
        return {
            "by": "cascade",
            "cascade": cascade,
            "rule": "held-out pairs inside the cascade band, most uncertain first",
            "fraction": self.fraction,
            "budget_usd_per_1k": None
            if self.budget_usd is None
            else self.budget_usd / self.n_held_out * 1000.0,
            "band_halfwidth": self.halfwidth if math.isfinite(self.halfwidth) else None,
            "reid_threshold": self.reid.threshold,
            "candidates": int(self.candidates.size),
            "asked": asked,
            "n_held_out": self.n_held_out,
        }


def plan_live_cascade(
    reid_entry: dict[str, Any],
    reid_scores: pa.Table,
    pairs: pa.Table,
    seed: int,
    cfg: CascadeConfig,
) -> LivePlan:
    """Which held-out pairs to send, in order, from the ReID scores and calibration labels."""
    ids = np.asarray(pairs.column("pair_id").to_numpy(), dtype=np.int64)
    label = np.asarray(pairs.column("label").to_numpy(), dtype=np.int64)
    view: SystemView = system_view(reid_entry, reid_scores, ids)
    sides = [np.asarray(pairs.column(c).to_pylist(), dtype=object) for c in ("path_a", "path_b")]
    pid_a, pid_b = (
        np.asarray(pairs.column(c).to_numpy(), dtype=np.int64) for c in ("pid_a", "pid_b")
    )
    image_a, image_b = image_codes(sides[0], sides[1])
    halves = identity_halves(*identity_codes(pid_a, pid_b, image_a, image_b), seed)
    calib = halves.a
    # calibrate_reid reads labels only where calib is True.
    reid = calibrate_reid(view, label, calib)
    d = reid.distance(view.score)
    if cfg.fraction is None and cfg.budget_usd_per_1k is None:
        raise UserError("cascade.live needs cascade.fraction or cascade.budget_usd_per_1k; set one")
    w = band_halfwidth(d[calib], cfg.fraction) if cfg.fraction is not None else math.inf
    held = np.flatnonzero(halves.b)
    inside = held[d[held] <= w]
    order = inside[np.lexsort((ids[inside], d[inside]))]
    budget = None
    if cfg.budget_usd_per_1k is not None:
        budget = cfg.budget_usd_per_1k * held.size / 1000.0
    return LivePlan(reid, cfg.fraction, w, order, int(held.size), budget)


class _OneBar:
    """One progress bar over several `judge_pairs` calls (each starts and finishes its own)."""

    def __init__(self, inner: Progress, description: str, total: int) -> None:
        self.inner = inner
        inner.start(description, total)

    def start(self, description: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1, **fields: object) -> None:
        self.inner.advance(n, **fields)

    def finish(self) -> None:
        pass


def _spent(table: pa.Table) -> float:
    cost = pc.fill_null(pc.cast(table.column("cost_usd"), pa.float64()), 0.0)
    return float(pc.sum(cost).as_py() or 0.0)


def _calls(table: pa.Table) -> int:
    """Calls behind these rows as the judges' budget counts them: attempts, or 1 if cached."""
    cached = pc.fill_null(table.column("cached"), False)
    attempts = pc.fill_null(table.column("attempts"), 0)
    return int(pc.sum(pc.if_else(cached, 1, attempts)).as_py() or 0)


def ask_live(
    system: LVLMSystemConfig,
    pairs: pa.Table,
    plan: LivePlan,
    root: Path,
    *,
    cache_path: Path,
    progress: Progress | None = None,
    environ: Mapping[str, str] = os.environ,
    chunk: int | None = None,
    stopped: list[str] | None = None,
    claim_lease_s: float | None = None,
) -> pa.Table:
    """The LVLM's rows for the pairs the plan sends (pairs a budget stopped are left out)."""
    from reidbench.judges import judge_pairs

    sub = pairs.take(pa.array(plan.candidates, pa.int64()))
    if plan.budget_usd is None:
        table = judge_pairs(
            system,
            sub,
            root,
            cache_path=cache_path,
            progress=progress,
            environ=environ,
            stopped=stopped,
            claim_lease_s=claim_lease_s,
        )
        return _drop_unsent(table)
    # judge_pairs counts the answers already in the response cache (with their original
    # cost) against a system's caps, so each chunk may spend what the chunks before it left.
    # Enough requests per chunk to keep every endpoint of a base_url list busy.
    endpoints = len(system.base_url) if isinstance(system.base_url, list) else 1
    size = chunk or max(16, 4 * system.concurrency * endpoints)
    bar = _OneBar(progress or NullProgress(), f"cascade {system.name}", sub.num_rows)
    parts: list[pa.Table] = []
    spent, calls = 0.0, 0  # cost and calls of every answer so far, cached ones included
    stops: list[str] = []
    try:
        for start in range(0, sub.num_rows, size):
            stop = min(start + size, sub.num_rows)
            cap = plan.budget_usd - spent
            if system.max_cost_usd is not None:
                cap = min(cap, system.max_cost_usd - spent)
            update: dict[str, Any] = {"max_cost_usd": max(cap, 0.0)}
            if system.max_calls is not None:
                update["max_calls"] = max(system.max_calls - calls, 0)
            table = judge_pairs(
                system.model_copy(update=update),
                sub.slice(start, stop - start),
                root,
                cache_path=cache_path,
                progress=bar,
                environ=environ,
                stopped=stops,
                claim_lease_s=claim_lease_s,
            )
            spent += _spent(table)
            calls += _calls(table)
            parts.append(_drop_unsent(table))
            if parts[-1].num_rows < table.num_rows or stops:
                break  # the cap was reached inside this chunk, or the breaker stopped it
    finally:
        bar.inner.finish()
        if stopped is not None:
            stopped.extend(stops)
    if not parts:
        return SCORES_SCHEMA.empty_table()
    return pa.concat_tables(parts)


def _drop_unsent(table: pa.Table) -> pa.Table:
    return table.filter(pc.not_equal(table.column("status"), "budget_exceeded"))
