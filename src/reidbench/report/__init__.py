"""The report stage: one self-contained HTML page, its figures, and a Markdown summary.

Entry point: `write_report(run_dir, metrics)`, called after `metrics.json` is
written (see docs/report.md).
"""

from __future__ import annotations

from reidbench.report.markdown import summary_markdown
from reidbench.report.write import render_report, write_report

__all__ = ["render_report", "summary_markdown", "write_report"]
