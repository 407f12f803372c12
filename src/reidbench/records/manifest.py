"""`run.json`, the run manifest: what was run (config, dataset, pair set) and one entry per
system (model or prompt, scale, threshold, fingerprints). Written by `reidbench run`,
read by `reidbench.rundir.open_run` and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from reidbench.errors import UserError
from reidbench.records.base import Number, Record, read_object, validation_error
from reidbench.records.migrate import RUN_STEPS, migrate

RUN_SCHEMA_VERSION = len(RUN_STEPS)


class SystemEntry(Record):
    """One system of the run. ``threshold`` absent and ``threshold: null`` differ (an LVLM
    without the key gets its default, null means "calibrate"): see `threshold_recorded`."""

    name: str
    type: str = "lvlm"  # "reid" | "lvlm" | "fusion" | "cascade"
    scale: Number | None = None
    threshold: Number | None = None
    fingerprint: str | None = None

    @property
    def threshold_recorded(self) -> bool:
        return "threshold" in self.model_fields_set


class ConfigRecord(Record):
    """The experiment config as run (`ExperimentConfig.model_dump`); ``seed`` and
    ``bootstrap`` stay as written, since the metrics stage checks them with its own message."""

    name: str | None = None


class RunManifest(Record):
    schema_version: int = RUN_SCHEMA_VERSION
    reidbench_version: str | None = None
    created: str | None = None
    config: ConfigRecord = Field(default_factory=ConfigRecord)
    dataset: dict[str, Any] = Field(default_factory=dict)
    pairs: dict[str, Any] = Field(default_factory=dict)
    systems: list[SystemEntry]

    def entry(self, name: str) -> SystemEntry | None:
        return next((e for e in self.systems if e.name == name), None)


def manifest_from_dict(data: dict[str, Any], where: str = "run.json") -> RunManifest:
    """A manifest dict (any schema version up to the current one), migrated and typed."""
    if not isinstance(data.get("systems"), list):
        raise UserError(f"{where}: no 'systems' list; re-run `reidbench run` into this folder")
    try:
        return RunManifest.model_validate(migrate(data, RUN_STEPS, where))
    except ValidationError as exc:
        raise validation_error(where, "run manifest", exc) from exc


def checked_manifest(data: dict[str, Any], where: str = "run.json") -> dict[str, Any]:
    """What a writer puts in run.json: ``data`` validated through `RunManifest`, with its
    schema_version (a key the model does not type is kept as is)."""
    return manifest_from_dict(data, where).to_json_dict()


def load_manifest(path: str | Path) -> RunManifest:
    """Read and migrate ``run.json`` (a UserError names the file and the fix)."""
    path = Path(path)
    return manifest_from_dict(read_object(path, "run manifest"), str(path))
