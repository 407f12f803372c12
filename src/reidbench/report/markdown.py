"""The Markdown summary table printed at the end of `run`, `report` and `demo`.

Columns are padded so the table also reads well as plain text in a terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reidbench.report import format as fmt

COLUMNS = (
    "system",
    "type",
    "coverage",
    "accuracy",
    "F1",
    "AUC [95% CI]",
    "EER",
    "USD/1k pairs",
    "AUC coin flip",
)
RIGHT = {2, 3, 4, 5, 6, 7, 8}  # numeric columns


def _cell(text: str) -> str:
    """Markdown-safe cell text: a `|` would split the cell, a newline the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _row(name: str, b: Mapping[str, Any]) -> list[str]:
    ci = ((b.get("ci") or {}).get("intervals") or {}).get("auc")
    costs = b.get("costs") or {}
    per_k = costs.get("usd_per_1000_pairs")
    cost = fmt.usd(per_k)
    if b.get("type") == "reid" and per_k == 0:
        cost = "$0 (local)"
    kind = {"lvlm": "LVLM", "reid": "ReID"}.get(str(b.get("type")), str(b.get("type") or "-"))
    held = "†" if b.get("evaluated_on") else ""  # measured on a subset: footnoted below
    return [
        _cell(name) + held,
        _cell(kind),
        fmt.pct(b.get("coverage")),
        fmt.num(b.get("accuracy")),
        fmt.num(b.get("f1")),
        fmt.with_ci(b.get("auc"), ci),
        fmt.num(b.get("eer")),
        cost,
        # Abstentions as coin flips (metrics.json coverage_aware): refusing cannot raise it.
        fmt.num((b.get("coverage_aware") or {}).get("auc")),
    ]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [list(COLUMNS), *rows]) for i in range(len(COLUMNS))]

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if i in RIGHT else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [("-" * (w + 1) + ":") if i in RIGHT else "-" * (w + 2) for i, w in enumerate(widths)]
    return [line(list(COLUMNS)), "|" + "|".join(rule) + "|"] + [line(r) for r in rows]


def summary_markdown(metrics: Mapping[str, Any]) -> str:
    """A compact table of every system (dashes for undefined values), with the data source."""
    run = metrics.get("run") or {}
    ds = (run.get("dataset") or {}).get("dataset", "dataset")
    pairs = run.get("pairs") or {}
    seed = (pairs.get("meta") or {}).get("seed")
    head = (
        f"**{_cell(run.get('name') or 'run')}** on {_cell(ds)}"
        f"{' (SYNTHETIC)' if run.get('synthetic') else ''}: "
        f"{fmt.integer(pairs.get('n_pairs'))} pairs ({fmt.integer(pairs.get('n_same'))} same, "
        f"{fmt.integer(pairs.get('n_different'))} different), "
        f"seed {seed if seed is not None else '-'}"
    )
    systems = metrics.get("systems") or {}
    held = metrics.get("held_out") or {}
    lines = [head, ""]
    if held:  # like for like: fused systems only beside others on the same held-out pairs
        systems = {n: b for n, b in systems.items() if not b.get("evaluated_on")}
        lines.append(f"All {fmt.integer(pairs.get('n_pairs'))} pairs:")
        lines.append("")
    if systems:
        lines += _table([_row(str(n), b) for n, b in systems.items()])
    else:
        lines.append("No systems in this run.")
    if held:
        lines += ["", f"Every system on the {fmt.integer(held.get('n_pairs'))} held-out pairs:", ""]
        lines += _table([_row(str(n), b) for n, b in (held.get("systems") or {}).items()])
    lines.append("")
    lines.append(
        "Metrics on answered pairs at each system's threshold (optimistic where coverage is "
        "below 100%); AUC with a 95% bootstrap interval; 'AUC coin flip' counts every "
        "abstention as tied with the other class. Full report: report.html."
    )
    subsets = sorted({str(b["evaluated_on"]) for b in systems.values() if b.get("evaluated_on")})
    if subsets:
        lines.append(f"† evaluated on a subset of the pairs only: {'; '.join(subsets)}.")
    for w in metrics.get("warnings") or []:
        lines.append(f"Warning: {_cell(w)}")
    for s in metrics.get("fusion_skipped") or []:
        if isinstance(s, Mapping):
            lines.append(f"Fused system {_cell(str(s.get('name')))} not shown: {s.get('reason')}.")
    from reidbench.report.gallery_view import gallery_markdown  # issue #13: gallery task

    lines += gallery_markdown(metrics)
    if run.get("synthetic"):
        lines.append(
            "> SYNTHETIC DATA: procedural pedestrians, not real people; these numbers say "
            "nothing about performance on a real benchmark."
        )
    return "\n".join(lines) + "\n"
