"""The two tables stages hand to each other: pairs and scores (Arrow/Parquet).

One place defines their columns, so the pair curator, the experiment runner,
the metrics and the fusion agree without importing each other. Free-form
provenance (dataset, seed, rules, content hash) travels as JSON in the Parquet
schema metadata under the key `reidbench`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from reidbench.errors import UserError
from reidbench.files import atomic_path

META_KEY = b"reidbench"

# One row per labelled pair. Paths are relative to the dataset root recorded in metadata.
PAIRS_SCHEMA = pa.schema(
    [
        ("pair_id", pa.int64()),
        ("path_a", pa.string()),
        ("path_b", pa.string()),
        ("pid_a", pa.int64()),
        ("pid_b", pa.int64()),
        ("cam_a", pa.int64()),
        ("cam_b", pa.int64()),
        ("label", pa.int8()),  # 1 same person, 0 different
    ]
)

# One row per (pair, system, order, repeat). `score` is on the system's own scale
# (LVLMs 0-100, embedders 0-1; the run manifest records each system's scale).
SCORES_SCHEMA = pa.schema(
    [
        ("pair_id", pa.int64()),
        ("system", pa.string()),
        ("score", pa.float64()),  # null when the system gave no score
        ("decision", pa.string()),  # same | different | unknown
        (
            "status",
            pa.string(),
        ),  # one of STATUSES below
        ("latency_s", pa.float64()),
        ("tokens_in", pa.int64()),
        ("tokens_out", pa.int64()),
        ("cost_usd", pa.float64()),
        ("raw", pa.string()),  # model text (never HTML-trusted) or "" for embedders
        ("order", pa.string()),  # "ab" or "ba" (symmetry checks ask both)
        ("repeat", pa.int64()),  # 0..n-1 (repeat-stability checks)
        ("reasons", pa.string()),  # parsed free-text reasons, if any
        ("error", pa.string()),  # error detail for api_error / parse_error
        ("cached", pa.bool_()),  # answer came from the response cache (no call paid)
        ("attempts", pa.int64()),  # calls made for this row, retries included
    ]
)

STATUSES = ("ok", "refusal", "safety_block", "parse_error", "api_error", "budget_exceeded")
DECISIONS = ("same", "different", "unknown")


def _with_meta(table: pa.Table, meta: dict[str, Any] | None) -> pa.Table:
    if not meta:
        return table
    existing = dict(table.schema.metadata or {})
    existing[META_KEY] = json.dumps(meta, sort_keys=True).encode()
    return table.replace_schema_metadata(existing)


def read_meta(table: pa.Table) -> dict[str, Any]:
    raw = (table.schema.metadata or {}).get(META_KEY)
    return json.loads(raw) if raw else {}


def write_table(
    path: str | os.PathLike[str], table: pa.Table, meta: dict[str, Any] | None = None
) -> None:
    """Write Parquet (or CSV with a `.meta.json` sidecar), atomically."""
    path = Path(path)
    table = _with_meta(table, meta)
    if path.suffix == ".parquet":
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    elif path.suffix == ".csv":
        with atomic_path(path) as tmp:
            pacsv.write_csv(table.replace_schema_metadata(None), tmp)
        if meta:
            sidecar = path.with_name(path.name + ".meta.json")
            with atomic_path(sidecar) as tmp:
                tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    else:
        raise UserError(f"{path}: unsupported table format; use a .parquet or .csv file name")


def read_table(path: str | os.PathLike[str], schema: pa.Schema | None = None) -> pa.Table:
    """Read a table written by `write_table`; CSV metadata comes from its sidecar."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        if path.suffix == ".parquet":
            table = pq.read_table(path)
        elif path.suffix == ".csv":
            opts = pacsv.ConvertOptions(column_types=schema) if schema is not None else None
            table = pacsv.read_csv(path, convert_options=opts)
            sidecar = path.with_name(path.name + ".meta.json")
            if sidecar.is_file():
                table = _with_meta(table, json.loads(sidecar.read_text()))
        else:
            raise UserError(f"{path}: unsupported table format; use a .parquet or .csv file")
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"{path}: not a readable table ({exc}); re-create it") from exc
    if schema is not None:
        missing = [n for n in schema.names if n not in table.column_names]
        if missing:
            raise UserError(f"{path}: missing columns {missing}; re-create the file with reidbench")
    return table
