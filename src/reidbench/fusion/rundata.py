"""Deprecated re-export (kept for one release): fusion reads run directories through
`reidbench.rundir` (the one model that metrics and report read too). `RunData` is
`reidbench.rundir.RunDir`, `read_run` is `reidbench.rundir.open_run`."""

from __future__ import annotations

import warnings
from pathlib import Path

from reidbench.rundir import DEFAULT_SCALE, RunDir, SystemView, inputs_digest, open_run, system_view

warnings.warn(
    "reidbench.fusion.rundata is deprecated and goes in the next release; "
    "use reidbench.rundir (RunDir, open_run)",
    DeprecationWarning,
    stacklevel=2,
)

RunData = RunDir

__all__ = ["DEFAULT_SCALE", "RunData", "SystemView", "inputs_digest", "read_run", "system_view"]


def read_run(run_dir: str | Path, *, seed: int | None = None) -> RunDir:
    """Pairs, labels and every system's primary answers of a run directory."""
    return open_run(run_dir, seed=seed)
