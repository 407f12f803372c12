"""LVLM-ReID disagreement (metrics.json `disagreement`): per (LVLM, ReID) pair of systems a
2x2 agreement table, the paired tests, and the pairs where exactly one of them is right."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reidbench.report import format as fmt
from reidbench.report import plots
from reidbench.report.model import Cell, Row, Table, as_map, count, formatted
from reidbench.report.pair_cards import CardGroup, card, score_text
from reidbench.report.thumbnails import Thumbnails

SUMMARY_COLUMNS = [
    ("Pairs", "identical pairs both systems were meant to answer"),
    ("Both right", ""),
    ("LVLM right only", "the LVLM is right and the ReID model wrong"),
    ("ReID right only", "the ReID model is right and the LVLM wrong"),
    ("Both wrong", "no fusion of these two can fix these pairs"),
    ("Accuracy LVLM - ReID", "paired difference with its 95% interval (abstention = wrong)"),
    ("McNemar p (exact)", "two-sided exact binomial test on the discordant pairs"),
    ("p (dependence-aware)", "clustered McNemar over identities, as under Paired comparisons"),
]


@dataclass
class AgreementView:
    lvlm: str
    reid: str
    colour_lvlm: str
    colour_reid: str
    table: Table  # the 2x2
    tests: list[tuple[str, str]]
    groups: list[CardGroup]


def _p(block: Any) -> str:
    return fmt.pvalue(as_map(block).get("p_value"))


def _label(lvlm: Any, reid: Any) -> str:
    return f"{lvlm} vs {reid}"


def summary_table(blocks: list[Mapping[str, Any]], colours: Mapping[str, str]) -> Table | None:
    """One row per (LVLM, ReID) pair: the 2x2 counts and the paired tests."""
    rows = []
    for b in blocks:
        t = as_map(b.get("table"))
        if not t:
            continue
        n = b.get("n") or 0
        diff = as_map(b.get("accuracy_diff"))
        rows.append(
            Row(
                _label(b.get("lvlm"), b.get("reid")),
                [
                    count(n),
                    *[
                        count(t.get(k), sub=_share(t.get(k), n))
                        for k in ("both_right", "lvlm_right_only", "reid_right_only", "both_wrong")
                    ],
                    Cell(fmt.signed(diff.get("diff")), ci=_ci(diff.get("ci"))),
                    formatted(as_map(b.get("mcnemar_exact")).get("p_value"), fmt.pvalue),
                    formatted(as_map(b.get("mcnemar")).get("p_value"), fmt.pvalue),
                ],
                colours.get(str(b.get("lvlm"))),
            )
        )
    if not rows:
        return None
    return Table(SUMMARY_COLUMNS, rows, head_label="LVLM vs ReID")


def _share(v: Any, n: Any) -> str:
    return fmt.pct(v / n) if fmt.is_num(v) and fmt.is_num(n) and n else ""


def _ci(ci: Any) -> str:
    ci = as_map(ci)
    if not fmt.is_num(ci.get("low")):
        return ""
    return f"[{fmt.signed(ci['low'])}, {fmt.signed(ci.get('high'))}]"


def two_by_two(b: Mapping[str, Any]) -> Table:
    """Rows: LVLM right / wrong; columns: ReID right / wrong; counts with their share."""
    t = as_map(b.get("table"))
    n = b.get("n") or 0

    def c(key: str, agree: bool) -> Cell:
        v: Any = t.get(key)
        share = v / n if fmt.is_num(v) and n else 0.0
        rgb = "26, 127, 55" if agree and key == "both_right" else "207, 34, 46"
        if key in ("lvlm_right_only", "reid_right_only"):
            rgb = "9, 105, 218"  # blue: where the two disagree, and fusion can help
        return Cell(
            fmt.integer(v),
            sub=fmt.pct(share),
            style=f"background-color: rgba({rgb}, {0.08 + 0.5 * share:.3f})",
        )

    rows = [
        Row("LVLM right", [c("both_right", True), c("lvlm_right_only", False)]),
        Row("LVLM wrong", [c("reid_right_only", False), c("both_wrong", False)]),
    ]
    return Table([("ReID right", ""), ("ReID wrong", "")], rows, head_label="")


def _example_card(title: str, e: Mapping[str, Any], thumbs: Thumbnails, scales: tuple[Any, Any]):
    def decided(v: Any, status: Any) -> str:
        if v is None:
            return f"no answer ({status})"
        return "same" if v else "different"

    facts = [
        (
            "LVLM",
            f"{decided(e.get('lvlm_same'), e.get('lvlm_status'))}; score "
            f"{score_text(e.get('lvlm_score'), e.get('lvlm_threshold'), scales[0])}",
        ),
        (
            "ReID",
            f"{decided(e.get('reid_same'), e.get('reid_status'))}; score "
            f"{score_text(e.get('reid_score'), e.get('reid_threshold'), scales[1])}",
        ),
    ]
    return card(title, e, thumbs, facts)


def agreement_views(
    metrics: Mapping[str, Any], colours: Mapping[str, str], thumbs: Thumbnails
) -> list[AgreementView]:
    systems = as_map(metrics.get("systems"))
    out = []
    for b in metrics.get("disagreement") or []:
        if not isinstance(b, Mapping) or not as_map(b.get("table")):
            continue
        lv, rd = str(b.get("lvlm")), str(b.get("reid"))
        scales = (as_map(systems.get(lv)).get("scale"), as_map(systems.get(rd)).get("scale"))
        exact, clustered = as_map(b.get("mcnemar_exact")), as_map(b.get("mcnemar"))
        diff = as_map(b.get("accuracy_diff"))
        acc = as_map(b.get("accuracy"))
        tests = [
            ("Pairs", f"{fmt.integer(b.get('n'))} identical pairs ({b.get('rule', '')})"),
            ("Accuracy", f"LVLM {fmt.num(acc.get('lvlm'))}, ReID {fmt.num(acc.get('reid'))}"),
            ("LVLM minus ReID", fmt.paired_change(dict(diff))),
            (
                "McNemar (exact)",
                f"p = {_p(exact)} on {fmt.integer(exact.get('b'))} + "
                f"{fmt.integer(exact.get('c'))} discordant pairs",
            ),
            ("Dependence-aware", f"p = {_p(clustered)} ({clustered.get('test', '')})"),
        ]
        ex = as_map(b.get("examples"))
        groups = [
            CardGroup(
                f"{lv} right, {rd} wrong",
                [
                    _example_card("LVLM right", e, thumbs, scales)
                    for e in ex.get("lvlm_right") or []
                    if isinstance(e, Mapping)
                ],
            ),
            CardGroup(
                f"{rd} right, {lv} wrong",
                [
                    _example_card("ReID right", e, thumbs, scales)
                    for e in ex.get("reid_right") or []
                    if isinstance(e, Mapping)
                ],
            ),
        ]
        out.append(
            AgreementView(
                lv,
                rd,
                colours.get(lv, plots.INK),
                colours.get(rd, plots.INK),
                two_by_two(b),
                tests,
                groups,
            )
        )
    return out
