"""The report's "Gallery ranking" section (issue #13 item 4), from metrics.json `tasks`.

One block per gallery task: its facts, a table of rank-1/5, mAP and mINP with their
identity-bootstrap intervals and coverage, the CMC figure, and the paired comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reidbench.report import format as fmt
from reidbench.report import plots
from reidbench.report.model import (
    Cell,
    ExtraBlock,
    ExtraSection,
    Row,
    Table,
    as_map,
    collect_notes,
    number,
)

HOWTO = (
    "Each query is ranked against its own small gallery (VP-ReID's query-gallery matching, "
    "arXiv 2508.06908): its true matches from other cameras plus images of other people, "
    "shuffled. Every system scored every (query, gallery image) pair; CMC, mAP and mINP "
    "follow torchreid's protocol. A pair a system did not answer ranks last (a true match "
    "below everything), so failures never help. Intervals resample query identities; the "
    "paired comparisons use the same resamples for both systems on identical queries."
)

_COLUMNS = (
    ("rank1", "Rank-1", "share of queries whose top-ranked image is a true match"),
    ("rank5", "Rank-5", "share of queries with a true match among the top 5"),
    ("mAP", "mAP", "mean average precision over queries"),
    ("mINP", "mINP", "mean inverse negative penalty: how deep the hardest true match lies"),
)


def _table(systems: Mapping[str, Any], colours: Mapping[str, str]) -> Table:
    cols = [(label, tip) for _, label, tip in _COLUMNS]
    cols.append(("Coverage", "answered (query, gallery image) pairs / all pairs"))
    rows = []
    for name, b in systems.items():
        b = as_map(b)
        ci = as_map(b.get("ci"))
        cells = [number(b.get(k), ci=ci.get(k)) for k, _, _ in _COLUMNS]
        cov = number(b.get("coverage"))
        cov.sub = f"{fmt.integer(b.get('n_answered'))} / {fmt.integer(b.get('n_items'))}"
        cells.append(cov)
        rows.append(Row(name, cells, colour=colours.get(name), sub=str(b.get("type") or "")))
    return collect_notes(Table(cols, rows))


def _comparisons(comps: list[Any], colours: Mapping[str, str]) -> Table | None:
    rows = []
    for c in comps:
        c = as_map(c)
        cells: list[Cell] = []
        for key in ("mAP", "rank1"):
            d = as_map(c.get(key))
            cells.append(number(d.get("diff"), ci=d.get("ci")))
            cells.append(Cell(fmt.pvalue(d.get("p_value"))))
        rows.append(
            Row(f"{c.get('a')} vs {c.get('b')}", cells, colour=colours.get(str(c.get("a"))))
        )
    if not rows:
        return None
    cols = [
        ("mAP A-B", "difference in mAP on identical queries, with its interval"),
        ("p", "two-sided paired bootstrap p-value"),
        ("Rank-1 A-B", "difference in rank-1 on identical queries, with its interval"),
        ("p", "two-sided paired bootstrap p-value"),
    ]
    return Table(cols, rows, head_label="A vs B")


def gallery_block(name: str, block: Mapping[str, Any], colours: Mapping[str, str]) -> ExtraBlock:
    """One gallery task: facts, table, CMC figure and paired comparisons."""
    systems = as_map(block.get("systems"))
    task = as_map(block.get("task"))
    boot = as_map(block.get("bootstrap"))
    facts = [
        ("Queries", fmt.integer(block.get("n_queries"))),
        ("Identities", fmt.integer(block.get("n_query_ids"))),
        ("Gallery per query", fmt.integer(block.get("gallery_size"))),
        ("Split, seed", f"{task.get('split', fmt.DASH)}, {task.get('seed', fmt.DASH)}"),
        ("Items hash", fmt.short_hash(block.get("items_hash"))),
        ("Unanswered pairs", str(block.get("failed_pairs") or fmt.DASH)),
        ("Intervals", f"{boot.get('method', fmt.DASH)}, {boot.get('resamples')} resamples"),
    ]
    tables = [("Rank-1, rank-5, mAP, mINP (95% intervals)", _table(systems, colours))]
    comps = _comparisons(list(block.get("comparisons") or []), colours)
    if comps is not None:
        tables.append(("Paired comparisons on identical queries", comps))
    figures = []
    uri = plots.cmc_plot({n: as_map(b) for n, b in systems.items()}, colours)
    if uri:
        figures.append((uri, f"CMC curves of the gallery task {name}"))
    size = (
        f"{fmt.integer(block.get('n_queries'))} queries x {fmt.integer(block.get('gallery_size'))}"
    )
    title = f"{size} images" if name == "gallery" else f"{name}: {size} images"
    return ExtraBlock(title, None, facts, tables=tables, figures=figures)


def gallery_section(
    name: str, block: Mapping[str, Any], colours: Mapping[str, str]
) -> ExtraSection:
    """The "Gallery ranking" section of one gallery task (report/task_views.py)."""
    palette = {**plots.system_colors(list(as_map(block.get("systems")))), **colours}
    title = "Gallery ranking" if name == "gallery" else f"Gallery ranking ({name})"
    return ExtraSection(f"task-{name}", title, HOWTO, [gallery_block(name, block, palette)])


def gallery_markdown(metrics: Mapping[str, Any]) -> list[str]:
    """Summary lines for `summary.md`: one line per system and gallery task."""
    lines: list[str] = []
    for name, block in as_map(metrics.get("tasks")).items():
        block = as_map(block)
        if block.get("kind") != "gallery":
            continue
        lines += [
            "",
            f"Gallery ranking ({name}): {fmt.integer(block.get('n_queries'))} queries x "
            f"{fmt.integer(block.get('gallery_size'))} images each, unanswered pairs ranked last:",
            "",
        ]
        for sys_name, b in as_map(block.get("systems")).items():
            b = as_map(b)
            ci = as_map(b.get("ci"))
            lines.append(
                f"- {sys_name}: rank-1 {fmt.with_ci(b.get('rank1'), ci.get('rank1'))}, "
                f"mAP {fmt.with_ci(b.get('mAP'), ci.get('mAP'))}, "
                f"mINP {fmt.num(b.get('mINP'))}, coverage {fmt.pct(b.get('coverage'))}"
            )
    return [*lines, ""] if lines else lines
