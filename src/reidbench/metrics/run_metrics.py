"""Deprecated re-export (kept for one release): `metrics.json` is computed by
`reidbench.metrics.run`, one module per concern, over the run-directory model
`reidbench.rundir`. Import from `reidbench.metrics.run` (or `reidbench.metrics`)."""

import warnings

from reidbench.metrics.run.blocks import METRIC_NAMES as METRIC_NAMES
from reidbench.metrics.run.bootstrap import Bootstrap as Bootstrap
from reidbench.metrics.run.compute import METRICS_FORMAT as METRICS_FORMAT
from reidbench.metrics.run.compute import compute_metrics as compute_metrics
from reidbench.metrics.run.compute import metrics_json as metrics_json
from reidbench.metrics.run.compute import write_metrics as write_metrics
from reidbench.rundir import DEFAULT_SCALE as DEFAULT_SCALE

warnings.warn(
    "reidbench.metrics.run_metrics is deprecated and goes in the next release; "
    "import from reidbench.metrics.run instead",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["METRICS_FORMAT", "compute_metrics", "metrics_json", "write_metrics"]
