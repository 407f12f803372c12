"""The analysis views of issue #15 for the template, in one object: DET curves, the
embedders' failure gallery, LVLM-ReID disagreement and accuracy per camera pair.

Each figure also has a `*_figure` function returning the matplotlib Figure (det.det_figure,
cameras.camera_figure, cmc_band.cmc_band_figure) and each table is a `model.Table`, so an
exporter can write them as SVG/PDF and LaTeX/CSV."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reidbench.report.cameras import camera_plot, camera_table
from reidbench.report.det import det_plot
from reidbench.report.disagreement import AgreementView, agreement_views, summary_table
from reidbench.report.embedder_gallery import embedder_galleries
from reidbench.report.model import Table, as_map
from reidbench.report.pair_cards import CardGallery
from reidbench.report.thumbnails import Thumbnails


@dataclass
class Views:
    det: str | None = None
    embedder_gallery: list[CardGallery] = field(default_factory=list)
    agreement: Table | None = None
    agreements: list[AgreementView] = field(default_factory=list)
    cameras_plot: str | None = None
    cameras_table: Table | None = None
    camera_rule: str = ""
    toc: list[tuple[str, str]] = field(default_factory=list)  # (anchor, title)


def build_views(metrics: Mapping[str, Any], colours: Mapping[str, str], root: Path | None) -> Views:
    thumbs = Thumbnails(root)
    blocks = [b for b in metrics.get("disagreement") or [] if isinstance(b, Mapping)]
    cams = as_map(metrics.get("camera_pairs"))
    v = Views(
        det=det_plot(metrics.get("det"), colours),
        embedder_gallery=embedder_galleries(metrics, colours, thumbs),
        agreement=summary_table(blocks, colours),
        agreements=agreement_views(metrics, colours, thumbs),
        cameras_plot=camera_plot(cams, colours),
        cameras_table=camera_table(cams, colours),
        camera_rule=str(cams.get("rule") or ""),
    )
    if v.agreement is not None:
        v.toc.append(("disagreement", "LVLM–ReID disagreement"))
    if v.cameras_table is not None:
        v.toc.append(("cameras", "Camera pairs"))
    return v
