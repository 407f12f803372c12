"""The Markdown summary table printed at the end of `run`, `report` and `demo`.

Columns are padded so the table also reads well as plain text in a terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reidbench.metrics import specs
from reidbench.records import MetricsRecord, metrics_from_dict
from reidbench.report import format as fmt


def columns() -> list[str]:
    """Column headers: the metric ones from the spec table (specs with a `markdown` label)."""
    metrics = [str(s.markdown) for s in specs.markdown_specs()]
    return ["system", "type", "coverage", *metrics, "USD/1k pairs", "AUC coin flip"]


def __getattr__(name: str) -> Any:
    if name == "COLUMNS":  # the old constant, now computed so a registered metric shows
        return tuple(columns())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


LEFT = {0, 1}  # text columns; every other column is numeric (right-aligned)


def _cell(text: str) -> str:
    """Markdown-safe cell text: a `|` would split the cell, a newline the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _value(b: Mapping[str, Any], spec: specs.MetricSpec) -> str:
    if spec.markdown_ci:
        ci = ((b.get("ci") or {}).get("intervals") or {}).get(spec.key)
        return fmt.with_ci(b.get(spec.key), ci, spec.digits)
    return fmt.num(b.get(spec.key), spec.digits)


def _row(name: str, b: Mapping[str, Any]) -> list[str]:
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
        *[_value(b, s) for s in specs.markdown_specs()],
        cost,
        # Abstentions as coin flips (metrics.json coverage_aware): refusing cannot raise it.
        fmt.num((b.get("coverage_aware") or {}).get("auc")),
    ]


def _table(rows: list[list[str]]) -> list[str]:
    head = columns()
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        padded = [
            c.ljust(w) if i in LEFT else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w + 2) if i in LEFT else ("-" * (w + 1) + ":") for i, w in enumerate(widths)]
    return [line(head), "|" + "|".join(rule) + "|"] + [line(r) for r in rows]


def summary_markdown(metrics: Mapping[str, Any] | MetricsRecord) -> str:
    """A compact table of every system (dashes for undefined values), with the data source."""
    record = metrics_from_dict(metrics)
    run = record.run
    ds = run.dataset.get("dataset", "dataset")
    pairs = run.pairs
    seed = pairs.meta.get("seed")
    head = (
        f"**{_cell(run.name or 'run')}** on {_cell(ds)}"
        f"{' (SYNTHETIC)' if run.synthetic else ''}: "
        f"{fmt.integer(pairs.n_pairs)} pairs ({fmt.integer(pairs.n_same)} same, "
        f"{fmt.integer(pairs.n_different)} different), "
        f"seed {seed if seed is not None else '-'}"
    )
    systems: Mapping[str, Mapping[str, Any]] = record.systems
    held = record.held_out or {}
    lines = [head, ""]
    if held:  # like for like: fused systems only beside others on the same held-out pairs
        systems = {n: b for n, b in systems.items() if not b.get("evaluated_on")}
        lines.append(f"All {fmt.integer(pairs.n_pairs)} pairs:")
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
    for w in record.warnings:
        lines.append(f"Warning: {_cell(w)}")
    for s in record.fusion_skipped or []:
        if isinstance(s, Mapping):
            lines.append(f"Fused system {_cell(str(s.get('name')))} not shown: {s.get('reason')}.")
    from reidbench.report.choice_view import choice_markdown  # [[tasks]] (docs/tasks.md)
    from reidbench.report.gallery_view import gallery_markdown

    tasks = {"tasks": record.tasks or {}}
    for line in choice_markdown(tasks) + gallery_markdown(tasks):
        if line or (lines and lines[-1]):  # one blank line between blocks
            lines.append(line)
    if run.synthetic:
        lines.append(
            "> SYNTHETIC DATA: procedural pedestrians, not real people; these numbers say "
            "nothing about performance on a real benchmark."
        )
    return "\n".join(lines) + "\n"
