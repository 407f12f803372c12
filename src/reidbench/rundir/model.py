"""The one model of a run directory that metrics, fusion and report read.

A run directory holds `run.json` (the manifest: config and one entry per
system), `pairs.parquet`, `scores.parquet` and, after `reidbench fuse`,
`fusion/<name>.json` + `fusion/<name>.parquet` records. This module reads them
once and owns every rule about what they mean, so no stage re-derives them:

- each system's score **scale** (LVLMs 0-100, embedders 0-1, or the entry's
  `scale`) and its **recorded threshold** (LVLM default 50);
- the **primary answer** of a pair: its row with order "ab" and repeat 0
  (other rows feed consistency only);
- the **answered** rule: status "ok" with a finite score or a stated
  same/different decision;
- per-pair **identities and images** (distractors and junk: one identity per
  image), which the identity-disjoint halves and the cluster bootstrap need;
- the **calibration / held-out halves** (`reidbench.metrics.splits`).

Old run directories open unchanged: `run.json` is read through
`reidbench.records.RunManifest`, which migrates files written before schema
versions (docs/run-directory.md), and nothing here needs a field they lack.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reidbench.errors import UserError
from reidbench.records import RunManifest, load_manifest
from reidbench.rundir.halves import Halves, identity_codes, identity_halves, image_codes
from reidbench.rundir.verify import check_pairs_hash, check_scores
from reidbench.tables import PAIRS_SCHEMA, SCORES_SCHEMA, STATUSES, read_meta, read_table

__all__ = [
    "DEFAULT_SCALE",
    "FUSION_FORMAT",
    "FusedRecord",
    "Pairs",
    "Rows",
    "RunDir",
    "SystemView",
    "answered_mask",
    "clean_json",
    "inputs_digest",
    "open_run",
    "read_json",
    "recorded_threshold",
    "rows_by_system",
    "system_kind",
    "system_scale",
    "system_view",
]

DEFAULT_SCALE = {"lvlm": 100.0, "reid": 1.0}
FUSED_SCALE = 1.0  # fused and cascade systems score on 0-1
LVLM_DEFAULT_THRESHOLD = 50.0  # on 0-100, when run.json records none
FUSION_FORMAT = "reidbench.fusion/1"


# --- rules about systems ---------------------------------------------------------------


def system_kind(entry: dict[str, Any]) -> str:
    """ "reid" | "lvlm" | "fusion" | "cascade" (entries written before `type` was: "lvlm")."""
    return str(entry.get("type", "lvlm"))


def system_scale(entry: dict[str, Any]) -> float:
    """The top of the system's score scale (scores lie in [0, scale])."""
    return float(entry.get("scale") or DEFAULT_SCALE.get(system_kind(entry), 1.0))


def recorded_threshold(entry: dict[str, Any]) -> tuple[float | None, str]:
    """(threshold, source): the entry's own, the LVLM default, or (None, "none") = calibrate.

    An LVLM entry without the key gets 50 on 0-100; an explicit null means "calibrate".
    """
    if "threshold" in entry:
        t = entry["threshold"]
        return (None, "none") if t is None else (float(t), "recorded")
    if system_kind(entry) == "lvlm":
        return LVLM_DEFAULT_THRESHOLD, "lvlm_default"
    return None, "none"


def answered_mask(status: np.ndarray, score: np.ndarray, decision: np.ndarray) -> np.ndarray:
    """THE answered rule: status "ok" with a finite score or a stated same/different."""
    stated = (decision == "same") | (decision == "different")
    return (status == "ok") & (np.isfinite(score) | stated)


# --- small readers ---------------------------------------------------------------------


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable {what} ({exc}); re-create it") from exc


def clean_json(obj: Any) -> Any:
    """Copy of JSON-like data with non-finite floats as None (run.json may hold NaN)."""
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def _np(table: pa.Table, name: str, kind: str) -> np.ndarray:
    col = table.column(name)
    if kind == "float":
        return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    if kind == "int":
        return np.asarray(pc.fill_null(pc.cast(col, pa.int64()), 0).to_numpy(), np.int64)
    if kind == "bool":
        return np.asarray(pc.fill_null(col, False).to_numpy(zero_copy_only=False), bool)
    return np.asarray(col.to_pylist(), dtype=object)


# --- pairs -----------------------------------------------------------------------------


@dataclass
class Pairs:
    """The pair set, with per-pair identity and image codes for splits and clusters."""

    pair_id: np.ndarray
    label: np.ndarray
    path_a: np.ndarray
    path_b: np.ndarray
    pid_a: np.ndarray
    pid_b: np.ndarray
    meta: dict[str, Any]
    sorter: np.ndarray = field(init=False)  # argsort of pair_id, for id -> row lookups

    def __post_init__(self) -> None:
        self.sorter = np.argsort(self.pair_id, kind="stable")

    @property
    def n(self) -> int:
        return int(self.pair_id.size)

    @cached_property
    def images(self) -> tuple[np.ndarray, np.ndarray]:
        """(image_a, image_b): one integer code per distinct image path, shared by both sides."""
        return image_codes(self.path_a, self.path_b)

    @cached_property
    def identities(self) -> tuple[np.ndarray, np.ndarray]:
        """(id_a, id_b): the pid, except that distractors and junk (pid <= 0) are one identity
        per image (a unique negative code), so that they never tie two pairs together."""
        return identity_codes(self.pid_a, self.pid_b, *self.images)

    def clusters(self) -> np.ndarray:
        """(n, 2) identity codes per pair (a side, b side): the clusters of a dependence-aware
        bootstrap (`metrics.run.Bootstrap(clusters=...)`)."""
        return np.stack(self.identities, axis=1)

    def halves(self, seed: int) -> Halves:
        """The identity-disjoint calibration / held-out halves (docs/metrics.md)."""
        return identity_halves(*self.identities, seed)

    def leakage(self, halves: Halves) -> dict[str, int]:
        """Identities and images found in both halves (0 for identity halves)."""
        return halves.leakage(*self.identities, *self.images)

    def rows_of(self, ids: np.ndarray, where: str) -> np.ndarray:
        """Row index in this table of each pair id (a UserError names an unknown one)."""
        ids = np.asarray(ids, dtype=np.int64)
        sorted_ids = self.pair_id[self.sorter]
        pos = np.searchsorted(sorted_ids, ids)
        found = pos < self.n
        found[found] = sorted_ids[pos[found]] == ids[found]
        if not found.all():
            example = int(ids[np.flatnonzero(~found)[0]])
            raise UserError(
                f"{where}: pair_id {example} is not in pairs.parquet; the scores and pairs "
                "come from different runs, re-run `reidbench run` into a fresh directory"
            )
        return self.sorter[pos]

    def subset(self, keep: np.ndarray) -> Pairs:
        return Pairs(
            pair_id=self.pair_id[keep],
            label=self.label[keep],
            path_a=self.path_a[keep],
            path_b=self.path_b[keep],
            pid_a=self.pid_a[keep],
            pid_b=self.pid_b[keep],
            meta=self.meta,
        )

    def triplets(self, run: dict[str, Any]) -> np.ndarray:
        """[ab, bc, ac] pair ids per triplet, (0, 3) when the pair set has none."""
        raw = self.meta.get("triplets")
        if raw is None:
            raw = (run.get("pairs") or {}).get("triplets")
        if not raw:
            return np.zeros((0, 3), dtype=np.int64)
        msg = (
            "pairs.parquet: meta 'triplets' must be a list of [ab, bc, ac] pair ids; "
            "re-create the pair set"
        )
        try:
            arr = np.asarray(raw, dtype=np.int64)
        except (TypeError, ValueError) as exc:
            raise UserError(msg) from exc
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise UserError(msg)
        return arr


def read_pairs_table(path: Path) -> tuple[Pairs, pa.Table]:
    table = read_table(path, schema=PAIRS_SCHEMA)
    ids = _np(table, "pair_id", "int")
    label = _np(table, "label", "int")
    if ids.size and np.unique(ids).size != ids.size:
        raise UserError(f"{path}: duplicate pair_id values; re-create the pair set")
    if np.any((label != 0) & (label != 1)):
        raise UserError(f"{path}: labels must be 0 (different) or 1 (same); re-create the pair set")
    pairs = Pairs(
        pair_id=ids,
        label=label,
        path_a=_np(table, "path_a", "str"),
        path_b=_np(table, "path_b", "str"),
        pid_a=_np(table, "pid_a", "int"),
        pid_b=_np(table, "pid_b", "int"),
        meta=read_meta(table),
    )
    return pairs, table


# --- score rows ------------------------------------------------------------------------


@dataclass
class Rows:
    """Every scores row of one system, as aligned arrays."""

    pair_id: np.ndarray
    row: np.ndarray  # index into the pairs table
    score: np.ndarray
    decision: np.ndarray
    status: np.ndarray
    order: np.ndarray
    repeat: np.ndarray
    latency: np.ndarray
    tokens_in: np.ndarray
    tokens_out: np.ndarray
    cost: np.ndarray
    raw: np.ndarray
    reasons: np.ndarray
    error: np.ndarray
    cached: np.ndarray
    attempts: np.ndarray

    def take(self, mask: np.ndarray) -> Rows:
        return Rows(**{k: v[mask] for k, v in self.__dict__.items()})

    @property
    def answered(self) -> np.ndarray:
        return answered_mask(self.status, self.score, self.decision)

    @property
    def primary(self) -> np.ndarray:
        return (self.order == "ab") & (self.repeat == 0)

    @staticmethod
    def empty() -> Rows:
        z, o, i = np.zeros(0), np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
        return Rows(
            pair_id=i, row=i, score=z, decision=o, status=o, order=o, repeat=i, latency=z,
            tokens_in=z, tokens_out=z, cost=z, raw=o, reasons=o, error=o,
            cached=np.zeros(0, dtype=bool), attempts=z,
        )  # fmt: skip


def rows_by_system(table: pa.Table, pairs: Pairs, path: Path | str) -> dict[str, Rows]:
    """A scores table split by system; unknown statuses/orders and duplicate rows refused."""
    systems = _np(table, "system", "str")
    status = _np(table, "status", "str")
    order = _np(table, "order", "str")
    unknown = sorted({str(s) for s in status} - set(STATUSES))
    if unknown:
        raise UserError(
            f"{path}: unknown status values {unknown}; expected one of {list(STATUSES)}. The "
            "file was edited or comes from another tool: re-run `reidbench run` into a fresh "
            "directory"
        )
    bad_order = sorted({str(o) for o in order} - {"ab", "ba"})
    if bad_order:
        raise UserError(f"{path}: unknown order values {bad_order}; expected 'ab' or 'ba'")
    ids = _np(table, "pair_id", "int")
    rows = Rows(
        pair_id=ids,
        row=pairs.rows_of(ids, str(path)),
        score=_np(table, "score", "float"),
        decision=_np(table, "decision", "str"),
        status=status,
        order=order,
        repeat=_np(table, "repeat", "int"),
        latency=_np(table, "latency_s", "float"),
        tokens_in=_np(table, "tokens_in", "float"),
        tokens_out=_np(table, "tokens_out", "float"),
        cost=_np(table, "cost_usd", "float"),
        raw=_np(table, "raw", "str"),
        reasons=_np(table, "reasons", "str"),
        error=_np(table, "error", "str"),
        cached=_np(table, "cached", "bool"),
        attempts=_np(table, "attempts", "float"),
    )
    out = {}
    for name in dict.fromkeys(systems.tolist()):
        sub = rows.take(systems == name)
        key = np.stack([sub.pair_id, sub.repeat, (sub.order == "ba").astype(np.int64)], axis=1)
        if np.unique(key, axis=0).shape[0] != key.shape[0]:
            raise UserError(
                f"{path}: system {name!r} has more than one row for the same pair, order and "
                "repeat; the file was merged twice, re-run `reidbench run`"
            )
        out[str(name)] = sub
    return out


# --- one system's primary answers ------------------------------------------------------


@dataclass
class SystemView:
    """One system's primary answer per pair (arrays aligned with the pairs table)."""

    name: str
    kind: str  # "reid" | "lvlm" | "fusion" | "cascade"
    scale: float
    recorded_threshold: float | None  # on the system's own scale; None = calibrate
    threshold_source: str  # "recorded" | "lvlm_default" | "none"
    entry: dict[str, Any]
    rows: Rows  # every row of the system (orders, repeats), for consistency and costs
    has_row: np.ndarray  # a primary row exists (False: never asked)
    score: np.ndarray  # NaN where there is no score
    decision: np.ndarray  # same | different | unknown ("unknown" where no row)
    status: np.ndarray  # scores status, "missing" where no row
    cost: np.ndarray  # USD of the primary answer, NaN where unknown / no row
    tokens_in: np.ndarray
    tokens_out: np.ndarray
    attempts: np.ndarray
    cached: np.ndarray
    raw: np.ndarray
    error: np.ndarray
    reasons: np.ndarray

    @property
    def answered(self) -> np.ndarray:
        return answered_mask(self.status, self.score, self.decision)

    @property
    def stated_same(self) -> np.ndarray:
        return self.decision == "same"

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

    def take(self, keep: np.ndarray, pairs: Pairs) -> SystemView:
        """The view over the pairs in `keep` only (rows re-indexed to `pairs.subset(keep)`)."""
        sub = pairs.subset(keep)
        rows = self.rows.take(np.isin(self.rows.pair_id, sub.pair_id))
        rows.row = sub.rows_of(rows.pair_id, self.name)
        return _view_from_rows(self.entry, rows, sub.n)


def _view_from_rows(entry: dict[str, Any], rows: Rows, n: int) -> SystemView:
    first = rows.take(rows.primary)
    at = first.row
    if np.unique(at).size != at.size:
        raise UserError(
            f"scores.parquet: system {entry['name']!r} has two primary rows for one pair; "
            "re-run `reidbench run`"
        )

    def spread(values: np.ndarray, fill: Any, dtype: Any) -> np.ndarray:
        out = np.full(n, fill, dtype=dtype)
        out[at] = values
        return out

    thr, source = recorded_threshold(entry)
    return SystemView(
        name=str(entry["name"]),
        kind=system_kind(entry),
        scale=system_scale(entry),
        recorded_threshold=thr,
        threshold_source=source,
        entry=entry,
        rows=rows,
        has_row=spread(np.ones(at.size, bool), False, bool),
        score=spread(first.score, np.nan, np.float64),
        decision=spread(first.decision, "unknown", object),
        status=spread(first.status, "missing", object),
        cost=spread(first.cost, np.nan, np.float64),
        tokens_in=spread(np.nan_to_num(first.tokens_in).astype(np.int64), 0, np.int64),
        tokens_out=spread(np.nan_to_num(first.tokens_out).astype(np.int64), 0, np.int64),
        attempts=spread(np.nan_to_num(first.attempts).astype(np.int64), 0, np.int64),
        cached=spread(first.cached, False, bool),
        raw=spread(first.raw, None, object),
        error=spread(first.error, None, object),
        reasons=spread(first.reasons, None, object),
    )


def system_view(entry: dict[str, Any], scores: pa.Table, pair_ids: np.ndarray) -> SystemView:
    """One system's primary answers from a scores table, aligned with `pair_ids`."""
    ids = np.asarray(pair_ids, dtype=np.int64)
    n = ids.size
    pairs = Pairs(
        pair_id=ids,
        label=np.zeros(n, np.int64),
        path_a=np.full(n, "", dtype=object),
        path_b=np.full(n, "", dtype=object),
        pid_a=np.zeros(n, np.int64),
        pid_b=np.zeros(n, np.int64),
        meta={},
    )
    table = scores.filter(pc.equal(scores.column("system"), str(entry["name"])))
    rows = rows_by_system(table, pairs, "scores.parquet").get(str(entry["name"]), Rows.empty())
    return _view_from_rows(entry, rows, n)


# --- fusion records --------------------------------------------------------------------


@dataclass
class FusedRecord:
    """A complete, current `fusion/<name>.json` record and its held-out rows."""

    record: dict[str, Any]
    rows: Rows

    @property
    def name(self) -> str:
        return str(self.record["name"])

    def view(self, n: int) -> SystemView:
        """The fused system's primary answers over the run's n pairs (held-out ones only)."""
        return _view_from_rows({**self.record["entry"], "name": self.name}, self.rows, n)


# --- the run directory -----------------------------------------------------------------


@dataclass
class RunDir:
    """A run directory, read once: manifest, pairs, every system's rows and primary answers."""

    path: Path
    run: dict[str, Any]
    pairs: Pairs
    seed: int
    rows: dict[str, Rows]
    systems: dict[str, SystemView]
    notes: list[str] = field(default_factory=list)
    manifest: RunManifest | None = None  # the typed run.json (`run` is its dict form)
    _fused: tuple[list[FusedRecord], list[dict[str, str]]] | None = None
    _halves: Halves | None = None

    # Names fusion used when this was `fusion.rundata.RunData`.
    @property
    def run_dir(self) -> Path:
        return self.path

    @property
    def pair_id(self) -> np.ndarray:
        return self.pairs.pair_id

    @property
    def label(self) -> np.ndarray:
        return self.pairs.label

    @label.setter
    def label(self, value: np.ndarray) -> None:  # tests swap labels to prove no leakage
        self.pairs.label = value

    @property
    def pairs_meta(self) -> dict[str, Any]:
        return self.pairs.meta

    @property
    def n(self) -> int:
        return self.pairs.n

    @property
    def config(self) -> dict[str, Any]:
        return self.run.get("config") or {}

    @property
    def entries(self) -> dict[str, dict[str, Any]]:
        return {str(e.get("name")): e for e in self.run["systems"] if isinstance(e, dict)}

    def halves(self) -> Halves:
        """THE calibration / held-out halves of docs/metrics.md, for this run's seed."""
        if self._halves is None:
            self._halves = self.pairs.halves(self.seed)
        return self._halves

    def calibration(self) -> np.ndarray:
        """THE calibration mask (half A), for this run's seed."""
        return self.halves().a

    def held_out(self, calib: np.ndarray | None = None) -> np.ndarray:
        """Held-out half B; for a caller's own calibration mask, its complement."""
        h = self.halves()
        if calib is None or np.array_equal(calib, h.a):
            return h.b
        return ~np.asarray(calib, dtype=bool)

    def system(self, name: str) -> SystemView:
        if name not in self.systems:
            raise UserError(
                f"{self.path / 'run.json'}: no system named {name!r}; this run has "
                f"{sorted(self.systems)}"
            )
        return self.systems[name]

    def fused(self) -> tuple[list[FusedRecord], list[dict[str, str]]]:
        """Complete, current fusion records ([records], [skipped with reason]); read once."""
        if self._fused is None:
            self._fused = _load_fused(self)
        return self._fused

    def set_fused(self, records: list[FusedRecord], skipped: list[dict[str, str]]) -> None:
        """The orchestrator hands in fusion records it has just fitted (not re-read from disk)."""
        self._fused = (records, skipped)


def open_run(run_dir: str | Path, *, seed: int | None = None) -> RunDir:
    """Read a run directory (a UserError names the file and the fix when it is unusable)."""
    run_dir = Path(run_dir)
    manifest = run_dir / "run.json"
    if not manifest.is_file():
        raise UserError(f"{manifest}: not found; pass a run directory made by `reidbench run`")
    record = load_manifest(manifest)  # typed, migrated to the current schema_version
    run = record.to_dict()
    raw_seed = record.config.extra("seed", 0) if seed is None else seed
    if isinstance(raw_seed, bool) or not isinstance(raw_seed, int) or raw_seed < 0:
        raise UserError(f"{manifest}: config.seed must be a whole number >= 0")
    pairs_path = run_dir / "pairs.parquet"
    pairs, pairs_table = read_pairs_table(pairs_path)
    notes = []
    note = check_pairs_hash(pairs_path, pairs_table, pairs.meta, run)
    if note:
        notes.append(note)
    scores_path = run_dir / "scores.parquet"
    entries = {str(e["name"]): e for e in run["systems"]}
    scores = read_table(scores_path, schema=SCORES_SCHEMA)
    check_scores(scores_path, scores, {n: system_scale(e) for n, e in entries.items()})
    rows = rows_by_system(scores, pairs, scores_path)
    stray = [name for name in rows if name not in entries]
    if stray:
        raise UserError(
            f"{scores_path}: rows for systems {stray} that run.json does not "
            "list; the files come from different runs"
        )
    systems = {
        name: _view_from_rows({**entry, "name": name}, rows.get(name, Rows.empty()), pairs.n)
        for name, entry in entries.items()
    }
    return RunDir(
        path=run_dir,
        run=run,
        pairs=pairs,
        seed=raw_seed,
        rows=rows,
        systems=systems,
        notes=notes,
        manifest=record,
    )


def inputs_digest(data: RunDir, systems: list[str]) -> str:
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


def _load_fused(data: RunDir) -> tuple[list[FusedRecord], list[dict[str, str]]]:
    folder = data.path / "fusion"
    if not folder.is_dir():
        return [], []
    found: list[FusedRecord] = []
    skipped: list[dict[str, str]] = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            skipped.append({"name": path.name, "file": path.name, "reason": f"unreadable ({exc})"})
            continue
        if not isinstance(record, dict) or record.get("format") != FUSION_FORMAT:
            skipped.append(
                {"name": path.name, "file": path.name, "reason": "not a reidbench fusion record"}
            )
            continue
        name = str(record.get("name", path.name))
        rows_path = data.path / str(record.get("rows_file", ""))
        if not rows_path.is_file():
            skipped.append({"name": name, "file": path.name, "reason": "its rows file is missing"})
            continue
        systems = list(record.get("systems") or [])
        if any(s not in data.systems for s in systems):
            skipped.append(
                {"name": name, "file": path.name, "reason": "fuses systems this run no longer has"}
            )
            continue
        if inputs_digest(data, systems) != record.get("inputs_digest"):
            skipped.append(
                {
                    "file": path.name,
                    "name": name,
                    "reason": "stale: its input systems or pairs changed since it was fitted; "
                    "re-run `reidbench fuse`",
                }
            )
            continue
        table = read_table(rows_path, schema=SCORES_SCHEMA)
        entry = record.get("entry") or {}
        check_scores(rows_path, table, {name: system_scale(entry)})
        rows = rows_by_system(table, data.pairs, rows_path).get(name, Rows.empty())
        found.append(FusedRecord(record, rows))
    return found, skipped
