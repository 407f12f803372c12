"""Plain data the template renders: tables of cells, key-value lists, generic trees.

The template stays dumb (loops and escaping only); every decision about what a
number means, how it is written and why it is missing is made in Python, where
it is tested.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reidbench.report import format as fmt


@dataclass
class Cell:
    text: str
    ci: str = ""  # the 95% interval, shown under the value
    note: str = ""  # why a value is missing (tooltip; also listed under the table)
    align: str = "num"  # "num" right-aligned tabular figures, "text" left, "mono" code
    sub: str = ""  # a second, smaller line (e.g. "459 / 459")
    style: str = ""  # inline CSS computed here from numbers, never from model text


@dataclass
class Row:
    head: str
    cells: list[Cell]
    colour: str | None = None  # the system's swatch colour
    sub: str = ""  # small text under the row head (type, direction, ...)


@dataclass
class Table:
    columns: list[tuple[str, str]]  # (label, tooltip explaining the column)
    rows: list[Row]
    head_label: str = "System"
    notes: list[str] = field(default_factory=list)
    caption: str = ""

    def add_note(self, note: str) -> None:
        if note and note not in self.notes:
            self.notes.append(note)


def text(value: Any, note: str = "") -> Cell:
    """A left-aligned text cell; null becomes a dash."""
    if value is None or value == "":
        return Cell(fmt.DASH, note=note, align="text")
    return Cell(str(value), align="text")


def mono(value: Any) -> Cell:
    return Cell(str(value) if value not in (None, "") else fmt.DASH, align="mono")


def number(value: Any, note: str = "", digits: int = 3, ci: Any = None) -> Cell:
    """A rate with its interval (when given) and the reason it is missing (when it is).

    A degenerate interval (every resample gave the value itself, e.g. full coverage)
    is left out: "[1.000, 1.000]" under 1.000 says nothing.
    """
    if not fmt.is_num(value):
        return Cell(fmt.DASH, note=note or "not available")
    interval = fmt.ci_text(ci, digits)
    if interval and ci.get("low") == ci.get("high") == value:
        interval = ""
    return Cell(fmt.num(value, digits), ci=interval)


def count(value: Any, note: str = "", sub: str = "") -> Cell:
    if not fmt.is_num(value):
        return Cell(fmt.DASH, note=note or "not available")
    return Cell(fmt.integer(value), sub=sub)


def formatted(value: Any, formatter, note: str = "", sub: str = "") -> Cell:
    if not fmt.is_num(value):
        return Cell(fmt.DASH, note=note or "not available", sub=sub)
    return Cell(formatter(value), sub=sub)


def collect_notes(table: Table) -> Table:
    """List why values are missing under the table, one line per reason:
    "Latency p50, Latency p95 of a, b: no latency recorded"."""
    labels = [c[0] for c in table.columns]
    by_reason: dict[str, tuple[list[str], list[str]]] = {}
    for row in table.rows:
        for label, cell in zip(labels, row.cells, strict=False):
            if cell.note and cell.text == fmt.DASH:
                cols, heads = by_reason.setdefault(cell.note, ([], []))
                if label not in cols:
                    cols.append(label)
                if row.head not in heads:
                    heads.append(row.head)
    for note, (cols, heads) in by_reason.items():
        table.add_note(f"{', '.join(cols)} of {', '.join(heads)}: {note}")
    return table


def as_map(value: Any) -> Mapping[str, Any]:
    """A block's part when it is a mapping; anything else reads as empty.

    Optional blocks come from other stages and may change shape; a part that
    cannot be read is left out rather than breaking the whole report.
    """
    return value if isinstance(value, Mapping) else {}


def reason(block: Mapping[str, Any] | None, key: str, *more: Mapping[str, Any] | None) -> str:
    """The first null reason recorded for `key` in any of the given blocks."""
    for b in (block, *more):
        if isinstance(b, Mapping):
            r = (b.get("null_reasons") or {}).get(key)
            if r:
                return str(r)
    return ""


# --- generic trees (optional blocks whose shape this module does not know) -------------

MAX_LIST = 12


@dataclass
class Node:
    kind: str  # "scalar" | "map" | "records" | "list"
    text: str = ""
    items: list[tuple[str, Node]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    elements: list[Node] = field(default_factory=list)


def scalar_text(value: Any) -> str:
    if value is None:
        return fmt.DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if fmt.is_num(value) else str(value)
    return str(value)


def to_tree(value: Any, depth: int = 0) -> Node:
    """Any JSON value as a renderable tree: maps as key-value lists, lists of same-keyed
    maps as tables, long number lists summarised (their curves are plotted separately)."""
    if isinstance(value, Mapping):
        return Node("map", items=[(str(k), to_tree(v, depth + 1)) for k, v in value.items()])
    if isinstance(value, list):
        if value and all(isinstance(v, Mapping) for v in value):
            cols: list[str] = []
            for v in value:
                cols.extend(str(k) for k in v if str(k) not in cols)
            simple = all(not isinstance(x, (Mapping, list)) for v in value for x in v.values())
            if simple:
                rows = [[scalar_text(v.get(c)) for c in cols] for v in value]
                return Node("records", columns=cols, rows=rows)
        if all(not isinstance(v, (Mapping, list)) for v in value):
            shown = [scalar_text(v) for v in value]
            if len(shown) > MAX_LIST:
                shown = [*shown[:3], "…", *shown[-2:]]
                return Node("scalar", text=f"{len(value)} values: " + ", ".join(shown))
            return Node("scalar", text="[" + ", ".join(shown) + "]")
        if depth > 6:
            return Node("scalar", text=f"{len(value)} items")
        return Node("list", elements=[to_tree(v, depth + 1) for v in value])
    return Node("scalar", text=scalar_text(value))


Pairs = list[tuple[str, str]]  # (label, value) facts


@dataclass
class ExtraBlock:
    name: str
    colour: str | None
    facts: Pairs
    tables: list[tuple[str, Table]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (data URI, alt text)
    details: list[tuple[str, Node]] = field(default_factory=list)


@dataclass
class ExtraSection:
    key: str
    title: str
    howto: str
    blocks: list[ExtraBlock]
    notes: list[str] = field(default_factory=list)
