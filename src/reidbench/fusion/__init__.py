"""Fusion of ReID models and LVLMs: logistic score fusion, a cost-aware cascade (offline and
live), and LVLM re-ranking of retrieval lists. See docs/fusion.md.

    from reidbench.fusion import fuse_run
    fuse_run("runs/demo", ["handcrafted", "efficientnet-lite0"])           # logistic
    fuse_run("runs/x", ["personvit-b", "gpt-4o"], method="cascade", budget_usd_per_1k=2.0)

Everything is fitted on calibration half A of `reidbench.metrics.splits.calibration_mask`
and reported on held-out half B only.
"""

from __future__ import annotations

import warnings
from typing import Any

from reidbench.fusion.cascade import (
    CascadeFusion,
    ReidCalibration,
    band_halfwidth,
    calibrate_reid,
    fuse_cascade,
    lvlm_unit,
)
from reidbench.fusion.logistic import (
    FeatureSpec,
    LogisticFusion,
    LogisticModel,
    feature_spec,
    fit_logistic,
    fuse_logistic,
)
from reidbench.fusion.records import (
    fit_cascade_record,
    fit_logistic_record,
    fuse_run,
    load_records,
    write_record,
)
from reidbench.rundir import SystemView

__all__ = [
    "CascadeFusion",
    "FeatureSpec",
    "LogisticFusion",
    "LogisticModel",
    "ReidCalibration",
    "SystemView",
    "band_halfwidth",
    "calibrate_reid",
    "feature_spec",
    "fit_cascade_record",
    "fit_logistic",
    "fit_logistic_record",
    "fuse_cascade",
    "fuse_logistic",
    "fuse_run",
    "load_records",
    "lvlm_unit",
    "write_record",
]

# Kept for one release: fusion read run directories itself before `reidbench.rundir`.
_DEPRECATED = {"RunData": "RunDir", "read_run": "open_run"}


def __getattr__(name: str) -> Any:
    """`reidbench.fusion.read_run` / `RunData`: the run-directory model's names, with a warning."""
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(
            f"reidbench.fusion.{name} is deprecated and goes in the next release; "
            f"use reidbench.rundir.{new}",
            DeprecationWarning,
            stacklevel=2,
        )
        import reidbench.rundir

        return getattr(reidbench.rundir, new)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
