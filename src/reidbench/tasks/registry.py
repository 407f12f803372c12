"""Which code runs and measures each task kind: the one place a new task is plugged in.

`reidbench run` runs the pairs task itself (experiment.py, the study's protocol); every other
`[[tasks]]` entry goes through `run_tasks`, which looks its kind up here, and
`tasks_metrics` fills metrics.json's `tasks` block the same way. A task writes everything
under `tasks/<name>/` of the run directory (docs/run-directory.md) and must be resumable.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reidbench.errors import UserError
from reidbench.progress import Log, ProgressFactory


@dataclass
class TaskContext:
    """What a task's run function gets besides its own settings."""

    cfg: Any  # reidbench.config.ExperimentConfig
    dataset: Any  # reidbench.datasets.Dataset
    paths: Any  # reidbench.experiment.RunPaths
    make_progress: ProgressFactory
    log: Log
    environ: Mapping[str, str]

    def task_dir(self, name: str) -> Path:
        return Path(self.paths.out) / "tasks" / name


@dataclass(frozen=True)
class MetricsSettings:
    """Resampling settings of metrics.json, shared with the pairs metrics."""

    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95


RunTask = Callable[[TaskContext, Any, str], None]  # (context, task settings, task name)
TaskMetrics = Callable[[Path, Mapping[str, Any], MetricsSettings], dict[str, Any]]

# kind -> ("module:run function", "module:metrics function"). The gallery task adds its
# line here; third parties call `register_task`.
_BUILTIN: dict[str, tuple[str, str]] = {
    "choice": ("reidbench.tasks.choice_run:run_choice", "reidbench.tasks.choice_metrics:metrics"),
    "gallery": ("reidbench.tasks.gallery_task:run", "reidbench.tasks.gallery_task:metrics"),
}
# kind -> "module:function(cfg, task)" raising UserError on settings that would fail only
# after money was spent (optional).
_CHECKS: dict[str, str] = {"choice": "reidbench.tasks.choice_run:check_choice"}
# kind -> "module:function(cfg, run_dir, log)": the pre-flight's estimate for the tasks of
# that kind, refusing a run whose cost would not fit a system's caps (optional).
_PREFLIGHTS: dict[str, str] = {"gallery": "reidbench.tasks.gallery:gallery_preflight"}
_REGISTERED: dict[str, tuple[RunTask, TaskMetrics]] = {}


def register_task(kind: str, run: RunTask, metrics: TaskMetrics) -> None:
    """Plug in a task kind: `run(ctx, task, name)` and `metrics(task_dir, task, settings)`."""
    _REGISTERED[kind] = (run, metrics)


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def task_functions(kind: str) -> tuple[RunTask, TaskMetrics]:
    if kind in _REGISTERED:
        return _REGISTERED[kind]
    if kind in _BUILTIN:
        run_ref, metrics_ref = _BUILTIN[kind]
        return _load(run_ref), _load(metrics_ref)
    known = sorted({"pairs", *_BUILTIN, *_REGISTERED})
    raise UserError(
        f"[[tasks]] kind {kind!r} is not available in this reidbench; use one of {known}"
    )


def task_names(tasks: list[Any]) -> list[str]:
    """Each task's folder under tasks/ and key in metrics.json: its kind, then kind-2, ..."""
    seen: dict[str, int] = {}
    names = []
    for task in tasks:
        kind = task["kind"] if isinstance(task, Mapping) else task.kind
        seen[kind] = seen.get(kind, 0) + 1
        names.append(kind if seen[kind] == 1 else f"{kind}-{seen[kind]}")
    return names


def check_tasks(cfg: Any) -> None:
    """Before anything is paid for: every task kind is known and names only run systems."""
    systems = {s.name for s in cfg.systems}
    for task in cfg.tasks:
        if task.kind == "pairs":
            continue
        task_functions(task.kind)
        if task.kind in _CHECKS:
            _load(_CHECKS[task.kind])(cfg, task)
        unknown = [n for n in (getattr(task, "systems", None) or []) if n not in systems]
        if unknown:
            raise UserError(
                f"[[tasks]] {task.kind}: systems {unknown} are not in [[systems]]; "
                f"use names from {sorted(systems)}"
            )


def tasks_preflight(cfg: Any, run_dir: Path, *, log: Log) -> None:
    """Each task kind's cost check, before the run directory is written."""
    for kind in dict.fromkeys(t.kind for t in cfg.tasks):
        if kind in _PREFLIGHTS:
            _load(_PREFLIGHTS[kind])(cfg, run_dir, log=log)


def run_tasks(ctx: TaskContext) -> None:
    """Run (or resume) every non-pairs task of the config, in order."""
    check_tasks(ctx.cfg)
    for task, name in zip(ctx.cfg.tasks, task_names(ctx.cfg.tasks), strict=True):
        if task.kind == "pairs":
            continue
        run, _ = task_functions(task.kind)
        run(ctx, task, name)


def tasks_metrics(run_dir: Path, config: Mapping[str, Any], settings: MetricsSettings) -> dict:
    """metrics.json's `tasks` block: one entry per task that has results in the run."""
    tasks = list(config.get("tasks") or [])
    out: dict[str, Any] = {}
    for task, name in zip(tasks, task_names(tasks), strict=True):
        folder = Path(run_dir) / "tasks" / name
        if task.get("kind") == "pairs" or not folder.is_dir():
            continue
        _, metrics = task_functions(task["kind"])
        out[name] = metrics(folder, task, settings)
    return out
