"""The report's analysis views (issue #15), computed once into metrics.json: LVLM-ReID
disagreement, DET curves, accuracy per camera pair and the embedders' worst errors."""

from __future__ import annotations

from typing import Any

from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.metrics.run.cameras import camera_accuracy, read_cameras
from reidbench.metrics.run.det import det_curves
from reidbench.metrics.run.disagreement import disagreements
from reidbench.metrics.run.embedder_failures import embedder_failures
from reidbench.metrics.run.thresholds import Decided
from reidbench.rundir import RunDir


def analysis_views(run: RunDir, views: list[Decided], boot: Bootstrap) -> dict[str, Any]:
    """Top-level metrics.json keys: disagreement, det, camera_pairs, embedder_failures."""
    pairs = run.pairs
    out: dict[str, Any] = {
        "disagreement": disagreements(views, pairs, boot),
        "det": det_curves(views, pairs.label),
        "embedder_failures": embedder_failures(views, pairs),
    }
    cams = camera_accuracy(views, pairs, read_cameras(run.path, pairs))
    if cams is not None:
        out["camera_pairs"] = cams
    return out
