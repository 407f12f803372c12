"""Re-export: fusion reads run directories through `reidbench.rundir` (the one model that
metrics and report read too). `RunData` is `reidbench.rundir.RunDir`."""

from __future__ import annotations

from pathlib import Path

from reidbench.rundir import DEFAULT_SCALE, RunDir, SystemView, inputs_digest, open_run, system_view

RunData = RunDir

__all__ = ["DEFAULT_SCALE", "RunData", "SystemView", "inputs_digest", "read_run", "system_view"]


def read_run(run_dir: str | Path, *, seed: int | None = None) -> RunDir:
    """Pairs, labels and every system's primary answers of a run directory."""
    return open_run(run_dir, seed=seed)
