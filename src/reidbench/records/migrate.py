"""Schema versions of run.json and metrics.json, and the steps that bring old files forward.

Version 0 is every file written before records carried a ``schema_version`` (e.g. main
at commit ed756d8, kept as tests/fixtures/run_ed756d8). A migration step takes the dict
of version N to version N + 1 and never drops a key; files newer than this reidbench
are refused with a clear line instead of being misread.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from reidbench.errors import UserError

Step = Callable[[dict[str, Any]], dict[str, Any]]


def _run_0_to_1(data: dict[str, Any]) -> dict[str, Any]:
    # Entries written before `type` was recorded were LVLM judges (rundir.system_kind).
    for entry in data.get("systems") or []:
        if isinstance(entry, dict) and "type" not in entry:
            entry["type"] = "lvlm"
    return data


def _metrics_0_to_1(data: dict[str, Any]) -> dict[str, Any]:
    return data  # version 1 only adds the version itself


RUN_STEPS: tuple[Step, ...] = (_run_0_to_1,)
METRICS_STEPS: tuple[Step, ...] = (_metrics_0_to_1,)


def version_of(data: dict[str, Any], where: str) -> int:
    raw = data.get("schema_version", 0)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise UserError(f"{where}: schema_version must be a whole number >= 0, not {raw!r}")
    return raw


def migrate(data: dict[str, Any], steps: tuple[Step, ...], where: str) -> dict[str, Any]:
    """A copy of ``data`` brought to the current version (len(steps)); input left untouched."""
    current = len(steps)
    version = version_of(data, where)
    if version > current:
        raise UserError(
            f"{where}: schema_version {version} is newer than this reidbench reads "
            f"({current}); upgrade reidbench to open this run directory"
        )
    if version == current:
        return data
    out = copy.deepcopy(data)
    for step in steps[version:]:
        out = step(out)
    out["schema_version"] = current
    return out
