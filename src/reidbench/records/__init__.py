"""Typed records of the stage contracts: `run.json` (the run manifest) and `metrics.json`.

from reidbench.records import load_manifest, load_metrics
manifest = load_manifest("runs/demo/run.json")   # RunManifest, migrated to the current schema
manifest.config.seed, manifest.systems[0].name
metrics = load_metrics("runs/demo/metrics.json") # MetricsRecord
metrics.run.pairs.n_pairs, metrics.systems["handcrafted"]["auc"]

The top level is typed; the open-ended blocks (a system's metric block, the protocol, the
dataset info) stay plain dicts or models with ``extra="allow"``, so a key another part of
reidbench adds is kept, never rejected or dropped. Every record carries a
``schema_version``; files written before versions existed (no field: version 0) are
migrated on load (`reidbench.records.migrate`, docs/run-directory.md).
"""

from reidbench.records.base import Record
from reidbench.records.manifest import (
    RUN_SCHEMA_VERSION,
    ConfigRecord,
    RunManifest,
    SystemEntry,
    checked_manifest,
    load_manifest,
    manifest_from_dict,
)
from reidbench.records.metrics import (
    METRICS_SCHEMA_VERSION,
    MetricsRecord,
    PairsSummary,
    RunSummary,
    load_metrics,
    metrics_from_dict,
)

__all__ = [
    "METRICS_SCHEMA_VERSION",
    "RUN_SCHEMA_VERSION",
    "ConfigRecord",
    "MetricsRecord",
    "PairsSummary",
    "Record",
    "RunManifest",
    "RunSummary",
    "SystemEntry",
    "checked_manifest",
    "load_manifest",
    "load_metrics",
    "manifest_from_dict",
    "metrics_from_dict",
]
