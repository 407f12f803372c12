"""Write report.html and summary.md into a run directory, atomically."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reidbench.errors import UserError
from reidbench.files import write_text_atomic
from reidbench.records import MetricsRecord, RunManifest, load_manifest, metrics_from_dict

SUPPORTED_FORMATS = ("reidbench.metrics/1",)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _manifest(run_dir: Path) -> RunManifest | None:
    path = run_dir / "run.json"
    if not path.is_file():
        return None  # everything essential is in metrics.json; run.json adds prompt paths
    return load_manifest(path)


def render_report(
    run_dir: str | Path, metrics: Mapping[str, Any] | MetricsRecord, *, generated: str | None = None
) -> tuple[str, str]:
    """(report HTML, Markdown summary) for a run; nothing is written.

    `generated` is the timestamp printed on the page (default: now, UTC); with it
    fixed, the same inputs give byte-identical HTML.
    """
    from reidbench.report.context import build_context
    from reidbench.report.html import render_html
    from reidbench.report.markdown import summary_markdown

    run_dir = Path(run_dir)
    record = metrics_from_dict(metrics, str(run_dir / "metrics.json"))
    fmt_name = record.format
    if fmt_name not in SUPPORTED_FORMATS:
        raise UserError(
            f"{run_dir / 'metrics.json'}: metrics format {fmt_name!r} is not one this reidbench "
            f"reports ({', '.join(SUPPORTED_FORMATS)}); run `reidbench report {run_dir}` to "
            "recompute it"
        )
    context = build_context(record, _manifest(run_dir), generated=generated or _now())
    return render_html(context), summary_markdown(record)


def write_report(run_dir: Path, metrics: dict, *, generated: str | None = None) -> str:
    """Write run_dir/report.html and run_dir/summary.md; return the Markdown summary.

    Both are rendered in memory first, so a failure leaves no partial file.
    """
    run_dir = Path(run_dir)
    html, summary = render_report(run_dir, metrics, generated=generated)
    write_text_atomic(run_dir / "report.html", html)
    write_text_atomic(run_dir / "summary.md", summary)
    return summary
