"""Read a run directory into per-system arrays aligned with the pair set.

Fusion reads only the run directory's documented files (`run.json`,
`pairs.parquet`, `scores.parquet`), never the metrics stage's internals, and
uses the same definitions as docs/metrics.md: the primary answer of a pair is
its row with order "ab" and repeat 0; a pair is answered when that row has
status "ok" and a score or a stated same/different decision.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reidbench.errors import UserError
from reidbench.metrics.splits import calibration_mask
from reidbench.tables import PAIRS_SCHEMA, SCORES_SCHEMA, read_meta, read_table

DEFAULT_SCALE = {"lvlm": 100.0, "reid": 1.0}


@dataclass
class SystemView:
    """One system's primary answer per pair (arrays aligned with `RunData.pair_id`)."""

    name: str
    kind: str  # "reid" | "lvlm"
    scale: float
    recorded_threshold: float | None  # on the system's own scale; None = calibrate
    entry: dict[str, Any]
    has_row: np.ndarray  # a primary row exists (False: never asked)
    score: np.ndarray  # NaN where there is no score
    decision: np.ndarray  # same | different | unknown ("unknown" where no row)
    status: np.ndarray  # scores status, "missing" where no row
    cost: np.ndarray  # USD of the primary answer, NaN where unknown / no row
    tokens_in: np.ndarray
    tokens_out: np.ndarray
    attempts: np.ndarray
    cached: np.ndarray

    @property
    def answered(self) -> np.ndarray:
        stated = (self.decision == "same") | (self.decision == "different")
        return (self.status == "ok") & (np.isfinite(self.score) | stated)

    @property
    def normalised(self) -> np.ndarray:
        """score / scale where answered with a score; a stated decision counts as 1 or 0."""
        s = self.score / self.scale
        stated = np.where(self.decision == "same", 1.0, 0.0)
        out = np.where(np.isfinite(s), s, stated)
        return np.where(self.answered, out, np.nan)

    def decide(self, threshold: float) -> np.ndarray:
        """score >= threshold where a score exists, else the stated decision (as metrics do)."""
        with np.errstate(invalid="ignore"):
            by_score = self.score >= threshold
        return np.where(np.isfinite(self.score), by_score, self.decision == "same")


@dataclass
class RunData:
    run_dir: Path
    run: dict[str, Any]
    pair_id: np.ndarray
    label: np.ndarray
    pairs_meta: dict[str, Any]
    seed: int
    systems: dict[str, SystemView] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.pair_id.size)

    def calibration(self) -> np.ndarray:
        """THE calibration mask (half A) of docs/metrics.md, for this run's seed."""
        return calibration_mask(self.pair_id, self.label, self.seed)

    def system(self, name: str) -> SystemView:
        if name not in self.systems:
            raise UserError(
                f"{self.run_dir / 'run.json'}: no system named {name!r}; this run has "
                f"{sorted(self.systems)}"
            )
        return self.systems[name]


def _np_float(table: pa.Table, name: str) -> np.ndarray:
    col = pc.cast(table.column(name), pa.float64())
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _np_int(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.cast(table.column(name), pa.int64()), 0).to_numpy())


def _np_obj(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_pylist(), dtype=object)


def read_run(run_dir: str | Path, *, seed: int | None = None) -> RunData:
    """Pairs, labels and every system's primary answers of a run directory."""
    run_dir = Path(run_dir)
    manifest = run_dir / "run.json"
    if not manifest.is_file():
        raise UserError(f"{manifest}: not found; pass a run directory made by `reidbench run`")
    try:
        run = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{manifest}: not a readable run manifest ({exc}); re-create it") from exc
    if not isinstance(run, dict) or not isinstance(run.get("systems"), list):
        raise UserError(f"{manifest}: no 'systems' list; re-run `reidbench run` into this folder")
    pairs = read_table(run_dir / "pairs.parquet", schema=PAIRS_SCHEMA)
    ids = _np_int(pairs, "pair_id")
    label = _np_int(pairs, "label")
    if np.unique(ids).size != ids.size:
        raise UserError(f"{run_dir / 'pairs.parquet'}: duplicate pair_id values; re-create it")
    cfg = run.get("config") or {}
    data = RunData(
        run_dir=run_dir,
        run=run,
        pair_id=ids,
        label=label,
        pairs_meta=read_meta(pairs),
        seed=int(cfg.get("seed", 0) if seed is None else seed),
    )
    scores = read_table(run_dir / "scores.parquet", schema=SCORES_SCHEMA)
    primary = scores.filter(
        pc.and_(pc.equal(scores.column("order"), "ab"), pc.equal(scores.column("repeat"), 0))
    )
    names = _np_obj(primary, "system")
    row_ids = _np_int(primary, "pair_id")
    sorter = np.argsort(ids, kind="stable")
    for entry in run["systems"]:
        if not isinstance(entry, dict) or "name" not in entry:
            continue
        name = str(entry["name"])
        sel = names == name
        data.systems[name] = _view(entry, primary.filter(pa.array(sel)), row_ids[sel], ids, sorter)
    return data


def system_view(entry: dict[str, Any], scores: pa.Table, pair_ids: np.ndarray) -> SystemView:
    """One system's primary answers from a scores table, aligned with `pair_ids`."""
    ids = np.asarray(pair_ids, dtype=np.int64)
    primary = scores.filter(
        pc.and_(pc.equal(scores.column("order"), "ab"), pc.equal(scores.column("repeat"), 0))
    )
    primary = primary.filter(pc.equal(primary.column("system"), str(entry["name"])))
    return _view(entry, primary, _np_int(primary, "pair_id"), ids, np.argsort(ids, kind="stable"))


def _view(
    entry: dict[str, Any], rows: pa.Table, row_ids: np.ndarray, ids: np.ndarray, sorter: np.ndarray
) -> SystemView:
    name = str(entry["name"])
    kind = str(entry.get("type", "lvlm"))
    n = ids.size
    pos = np.searchsorted(ids[sorter], row_ids)
    ok = pos < n
    ok[ok] = ids[sorter][pos[ok]] == row_ids[ok]
    if not ok.all():
        raise UserError(
            f"scores.parquet: system {name!r} has a row for pair_id "
            f"{int(row_ids[~ok][0])}, which is not in pairs.parquet; the files come from "
            "different runs"
        )
    at = sorter[pos]
    if np.unique(at).size != at.size:
        raise UserError(f"scores.parquet: system {name!r} has two primary rows for one pair")

    def spread(values: np.ndarray, fill: Any, dtype: Any) -> np.ndarray:
        out = np.full(n, fill, dtype=dtype)
        out[at] = values
        return out

    recorded = entry.get("threshold", 50.0 if kind == "lvlm" else None)
    return SystemView(
        name=name,
        kind=kind,
        scale=float(entry.get("scale") or DEFAULT_SCALE.get(kind, 1.0)),
        recorded_threshold=None if recorded is None else float(recorded),
        entry=entry,
        has_row=spread(np.ones(at.size, bool), False, bool),
        score=spread(_np_float(rows, "score"), np.nan, np.float64),
        decision=spread(_np_obj(rows, "decision"), "unknown", object),
        status=spread(_np_obj(rows, "status"), "missing", object),
        cost=spread(_np_float(rows, "cost_usd"), np.nan, np.float64),
        tokens_in=spread(_np_int(rows, "tokens_in"), 0, np.int64),
        tokens_out=spread(_np_int(rows, "tokens_out"), 0, np.int64),
        attempts=spread(_np_int(rows, "attempts"), 0, np.int64),
        cached=spread(
            np.asarray(pc.fill_null(rows.column("cached"), False).to_pylist(), bool), False, bool
        ),
    )


def inputs_digest(data: RunData, systems: list[str]) -> str:
    """A hash of everything a fusion of these systems reads: pair ids, labels, answers.

    A fusion record whose digest no longer matches the run (a system was re-run,
    the pairs changed) is stale and is not reported.
    """
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data.pair_id, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(data.label, dtype=np.int64).tobytes())
    for name in systems:
        v = data.system(name)
        h.update(name.encode() + b"\0")
        h.update(np.ascontiguousarray(v.score, dtype=np.float64).tobytes())
        h.update("\0".join(map(str, v.status)).encode())
        h.update("\0".join(map(str, v.decision)).encode())
        h.update(np.ascontiguousarray(v.cost, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]
