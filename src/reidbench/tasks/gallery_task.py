"""The gallery task's entries in the task registry (tasks/registry.py): adapters from the
registry's (context, settings, name) calls to tasks/gallery.py and gallery_metrics.py."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.tasks.config import GalleryTask
from reidbench.tasks.gallery import run_gallery
from reidbench.tasks.gallery_metrics import gallery_metrics
from reidbench.tasks.registry import MetricsSettings, TaskContext


def run(ctx: TaskContext, task: GalleryTask, name: str) -> None:
    run_gallery(
        ctx.cfg,
        task,
        ctx.paths.out,
        dataset=ctx.dataset,
        name=name,
        progress=ctx.make_progress,
        log=ctx.log,
        environ=ctx.environ,
        stopped=ctx.paths.stopped,
    )


def metrics(folder: Path, task: Mapping[str, Any], settings: MetricsSettings) -> dict[str, Any]:
    if not (folder / "manifest.json").is_file():  # curated, but no system finished yet
        return {"kind": "gallery", "status": "not run"}
    boot = Bootstrap(settings.n_boot, settings.seed, settings.level)
    return gallery_metrics(
        folder.parent.parent, GalleryTask.model_validate(dict(task)), boot, name=folder.name
    )
