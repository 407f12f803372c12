"""The report's coverage-aware parts (issue #9 item 3: no reward for refusing).

The headline comparison counts every abstention as a coin flip (`metrics.json`:
``systems.*.coverage_aware``); answered-only values are the optimistic bound and
failures-as-wrong the pessimistic one. This module builds the coverage-aware table,
the coverage-aware paired tests, the risk-coverage figure and the ranking the
highlights use, so that no system is called best on answered pairs alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib

from reidbench.metrics import specs
from reidbench.report import format as fmt
from reidbench.report import plots
from reidbench.report.model import Cell, Row, Table, as_map, collect_notes, formatted, number

Systems = Mapping[str, Mapping[str, Any]]
Colours = Mapping[str, str]


def coverage_keys() -> list[tuple[str, str, str]]:
    """(key, label, tooltip) of the coin-flip table: the specs with a coverage_help."""
    return [(s.key, s.label, str(s.coverage_help)) for s in specs.METRIC_SPECS if s.coverage_help]


def ranking_auc(block: Mapping[str, Any]) -> tuple[float | None, Any, str]:
    """(AUC used to rank a system, its interval, what it is): the coverage-aware AUC when
    metrics.json has it, else the answered-only AUC only at full coverage (an older
    metrics.json); None when a partial-coverage system has no coverage-aware value."""
    ca = as_map(block.get("coverage_aware"))
    if ca:
        ci = as_map(as_map(ca.get("ci")).get("intervals")).get("auc")
        return (ca.get("auc") if fmt.is_num(ca.get("auc")) else None), ci, "coverage-aware"
    full = fmt.is_num(block.get("coverage")) and block["coverage"] >= 1
    if full and fmt.is_num(block.get("auc")):
        return block["auc"], as_map(as_map(block.get("ci")).get("intervals")).get("auc"), "all"
    return None, None, ""


def coverage_sub(block: Mapping[str, Any]) -> str:
    """The coverage to print next to an answered-only number (empty at full coverage)."""
    cov = block.get("coverage")
    if fmt.is_num(cov) and cov < 1:
        return f"on {fmt.pct(cov)} answered"
    return ""


def coverage_aware_table(
    systems: Systems, colours: Colours, *, with_aurc: bool = True
) -> Table | None:
    """Every system over all the pairs it was meant to answer, abstentions as coin flips."""
    cols = [
        ("Coverage", "answered pairs / pairs the system was meant to answer"),
        *[(label, tip) for _, label, tip in coverage_keys()],
    ]
    if with_aurc:
        cols.append(
            ("AURC", "area under the risk-coverage curve (lower is better); abstentions at 0.5")
        )
    rows = []
    for name, b in systems.items():
        ca = as_map(b.get("coverage_aware"))
        if not ca:
            continue
        intervals = as_map(as_map(ca.get("ci")).get("intervals"))
        cov = number(ca.get("coverage"), ci=intervals.get("coverage"))
        cov.sub = f"{fmt.integer(ca.get('n_answered'))} / {fmt.integer(ca.get('n'))}"
        reasons = as_map(ca.get("null_reasons"))
        cells = [cov] + [
            number(ca.get(k), str(reasons.get(k) or ""), ci=intervals.get(k))
            for k, _, _ in coverage_keys()
        ]
        if with_aurc:
            rc = as_map(b.get("risk_coverage"))
            why = str(as_map(rc.get("null_reasons")).get("aurc") or "")
            cells.append(formatted(rc.get("aurc"), fmt.num, why))
        rows.append(Row(name, cells, colours.get(name), plots.label_text(b.get("type") or "")))
    if not rows:
        return None
    return collect_notes(Table(cols, rows))


def comparison_table(comparisons: list[Mapping[str, Any]], colours: Colours) -> Table | None:
    """Paired tests on the coverage-aware values of identical pairs."""
    cols = [
        ("Pairs", "pairs both systems were meant to answer (abstentions included)"),
        ("Accuracy A − B", "expected accuracy difference, abstentions 0.5 correct"),
        ("p (accuracy)", "paired test of expected correctness"),
        ("AUC A − B", "coverage-aware AUC difference, same resamples for both, 95% interval"),
        ("p (AUC)", "paired test of the coverage-aware AUC difference"),
    ]
    rows = []
    for c in comparisons:
        ca = as_map(c.get("coverage_aware"))
        if not ca:
            continue
        reasons = as_map(ca.get("null_reasons"))
        acc, auc = as_map(ca.get("accuracy")), as_map(ca.get("auc"))
        why_acc = str(reasons.get("accuracy") or "not computed")
        why_auc = str(reasons.get("auc") or "not computed")
        cells = [
            Cell(fmt.integer(ca.get("n"))),
            formatted(acc.get("diff"), lambda v: f"{v:+.3f}", why_acc),
            formatted(acc.get("p_value"), fmt.pvalue, why_acc),
            number(auc.get("diff"), why_auc, ci=auc.get("ci")),
            formatted(auc.get("p_value"), fmt.pvalue, why_auc),
        ]
        head = f"{c.get('a')} vs {c.get('b')}"
        rows.append(Row(head, cells, colours.get(str(c.get("a"))), "A = first, B = second"))
    if not rows:
        return None
    return collect_notes(Table(cols, rows, head_label="Comparison"))


def risk_coverage_plot(systems: Systems, colours: Colours) -> str | None:
    """Risk (error rate of the pairs taken) against coverage, most confident pairs first."""
    drawn = []
    for name, b in systems.items():
        rc = as_map(b.get("risk_coverage"))
        xs, ys = rc.get("coverage"), rc.get("risk")
        if isinstance(xs, list) and isinstance(ys, list) and xs and len(xs) == len(ys):
            drawn.append((name, rc, xs, ys))
    if not drawn:
        return None
    labels = []
    for name, rc, _, _ in drawn:
        aurc = rc.get("aurc")
        tag = f" (AURC {aurc:.3f})" if fmt.is_num(aurc) else ""
        labels.append(plots._legend_label(plots.label_text(name) + tag))
    legend_h = plots._legend_height(labels)
    with matplotlib.rc_context(plots._RC):
        fig = plots._figure(4.2, 3.6 + legend_h, margins=(0.62, 0.15, 0.7 + legend_h, 0.5))
        ax = fig.subplots()
        for (name, rc, xs, ys), label in zip(drawn, labels, strict=True):
            ax.step(
                [0.0, *xs],
                [ys[0], *ys],
                where="pre",
                color=colours.get(name, plots.INK),
                label=label,
            )
            cmax = rc.get("coverage_max")
            if fmt.is_num(cmax) and cmax < 1:
                ax.axvline(cmax, color=colours.get(name, plots.INK), linestyle=":", linewidth=1)
        ax.set(
            xlim=(0, 1.01),
            ylim=(0, max(0.55, max(max(ys) for _, _, _, ys in drawn) * 1.05)),
            xlabel="coverage (share decided, most confident first)",
            ylabel="risk (error rate of those pairs)",
            title="Risk-coverage\n(abstentions at coin-flip risk 0.5)",
        )
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncols=1)
    return plots.to_data_uri(fig)
