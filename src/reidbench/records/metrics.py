"""`metrics.json`: everything measured on a run (docs/metrics.md). Written by the metrics
stage (`reidbench.metrics.run.compute`), read by the report and Markdown summary.

Per-system blocks, comparisons and the optional fusion/cascade/rerank sections are open
dicts: other modules add keys to them, and a key is never rejected or dropped. The metric
keys inside a block are named by `reidbench.metrics.specs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from reidbench.records.base import Record, read_object, validation_error
from reidbench.records.migrate import METRICS_STEPS, migrate

METRICS_SCHEMA_VERSION = len(METRICS_STEPS)


class PairsSummary(Record):
    n_pairs: int | None = None
    n_same: int | None = None
    n_different: int | None = None
    n_triplets: int | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class RunSummary(Record):
    """What run was measured (from run.json and pairs.parquet) and under which protocol."""

    name: str | None = None
    created: str | None = None
    run_reidbench_version: str | None = None
    synthetic: bool | None = False
    dataset: dict[str, Any] = Field(default_factory=dict)
    pairs: PairsSummary = Field(default_factory=PairsSummary)
    protocol: dict[str, Any] = Field(default_factory=dict)
    checks: dict[str, Any] = Field(default_factory=dict)


class MetricsRecord(Record):
    format: str | None = None
    schema_version: int = METRICS_SCHEMA_VERSION
    reidbench_version: str | None = None
    run: RunSummary = Field(default_factory=RunSummary)
    systems: dict[str, dict[str, Any]] = Field(default_factory=dict)
    comparisons: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    failures: dict[str, Any] = Field(default_factory=dict)
    held_out: dict[str, Any] | None = None
    retrieval_other: dict[str, Any] | None = None
    fusion: dict[str, Any] | None = None
    cascade: dict[str, Any] | None = None
    fusion_skipped: list[Any] | None = None
    rerank: dict[str, Any] | None = None
    tasks: dict[str, Any] | None = None  # [[tasks]] beyond pairs: {name: block} (docs/tasks.md)


def metrics_from_dict(data: Any, where: str = "metrics.json") -> MetricsRecord:
    """A metrics dict (any schema version up to the current one), migrated and typed."""
    if isinstance(data, MetricsRecord):
        return data
    try:
        return MetricsRecord.model_validate(migrate(dict(data), METRICS_STEPS, where))
    except ValidationError as exc:
        raise validation_error(where, "metrics", exc) from exc


def load_metrics(path: str | Path) -> MetricsRecord:
    """Read and migrate a ``metrics.json`` (a UserError names the file and the fix)."""
    path = Path(path)
    return metrics_from_dict(read_object(path, "metrics file"), str(path))
