"""The one model of a run directory (see `reidbench.rundir.model` and docs/run-directory.md).

from reidbench.rundir import open_run
run = open_run("runs/demo")
run.systems["handcrafted"].answered      # THE answered rule, per pair
run.calibration()                         # half A of the identity-disjoint halves
"""

from reidbench.rundir.model import (
    DEFAULT_SCALE,
    FUSED_SCALE,
    FUSION_FORMAT,
    FusedRecord,
    Pairs,
    Rows,
    RunDir,
    SystemView,
    answered_mask,
    clean_json,
    inputs_digest,
    open_run,
    read_json,
    recorded_threshold,
    rows_by_system,
    system_kind,
    system_scale,
    system_view,
)

__all__ = [
    "DEFAULT_SCALE",
    "FUSED_SCALE",
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
