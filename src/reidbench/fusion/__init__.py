"""Fusion of ReID models and LVLMs: logistic score fusion, a cost-aware cascade (offline and
live), and LVLM re-ranking of retrieval lists. See docs/fusion.md.

    from reidbench.fusion import fuse_run
    fuse_run("runs/demo", ["handcrafted", "efficientnet-lite0"])           # logistic
    fuse_run("runs/x", ["personvit-b", "gpt-4o"], method="cascade", budget_usd_per_1k=2.0)

Everything is fitted on calibration half A of `reidbench.metrics.splits.calibration_mask`
and reported on held-out half B only.
"""

from __future__ import annotations

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
from reidbench.fusion.rundata import RunData, SystemView, read_run

__all__ = [
    "CascadeFusion",
    "FeatureSpec",
    "LogisticFusion",
    "LogisticModel",
    "ReidCalibration",
    "RunData",
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
    "read_run",
    "write_record",
]
