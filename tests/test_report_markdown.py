"""The Markdown summary table: valid Markdown, aligned as plain text, numbers as in metrics."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reidbench.report import summary_markdown
from reidbench.report.markdown import COLUMNS


def _system(auc: float | None = 0.9, kind: str = "lvlm", usd: float | None = 2.5) -> dict[str, Any]:
    return {
        "type": kind,
        "coverage": 0.875,
        "accuracy": 0.8,
        "f1": 0.75,
        "auc": auc,
        "eer": 0.2,
        "ci": {"intervals": {"auc": {"low": 0.85, "high": 0.95, "n_valid": 100}}},
        "costs": {"usd_per_1000_pairs": usd},
        "coverage_aware": {"auc": 0.85},
    }


def _metrics(systems: dict[str, Any], synthetic: bool = True) -> dict[str, Any]:
    return {
        "run": {
            "name": "demo",
            "synthetic": synthetic,
            "dataset": {"dataset": "market1501"},
            "pairs": {"n_pairs": 400, "n_same": 200, "n_different": 200, "meta": {"seed": 3}},
        },
        "systems": systems,
    }


def _cells(line: str) -> list[str]:
    """Split a Markdown table row on unescaped pipes."""
    assert line.startswith("|") and line.endswith("|"), line
    return [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]


def _table(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("|")]


def test_table_shape_and_values():
    text = summary_markdown(
        _metrics({"gpt-4o": _system(), "handcrafted": _system(0.95, "reid", 0.0)})
    )
    rows = _table(text)
    assert _cells(rows[0]) == list(COLUMNS)
    assert all(re.fullmatch(r"-+:?", c) for c in _cells(rows[1]))
    assert len({len(r) for r in rows}) == 1, "columns are padded to equal width"
    assert _cells(rows[2]) == [
        "gpt-4o",
        "LVLM",
        "87.5%",
        "0.800",
        "0.750",
        "0.900 [0.850, 0.950]",
        "0.200",
        "$2.50",
        "0.850",
    ]
    assert _cells(rows[3])[1] == "ReID" and _cells(rows[3])[-2] == "$0 (local)"
    first = text.splitlines()[0]
    assert first == (
        "**demo** on market1501 (SYNTHETIC): 400 pairs (200 same, 200 different), seed 3"
    )
    assert "SYNTHETIC DATA" in text


def test_real_data_has_no_synthetic_line_and_nulls_are_dashes():
    text = summary_markdown(_metrics({"x": _system(auc=None, usd=None)}, synthetic=False))
    assert "SYNTHETIC" not in text
    cells = _cells(_table(text)[2])
    assert cells[5] == "—" and cells[7] == "—"


def test_no_systems():
    assert "No systems in this run." in summary_markdown(_metrics({}))


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_any_system_name_stays_in_its_cell(name):
    text = summary_markdown(_metrics({name: _system()}))
    rows = _table(text)
    cells = _cells(rows[2])
    assert len(cells) == len(COLUMNS)
    assert cells[0].replace("\\|", "|") == " ".join(name.split())
    assert len(text.splitlines()) == len(summary_markdown(_metrics({"a": _system()})).splitlines())


def test_systems_measured_on_a_subset_are_marked():
    fused = dict(_system(), evaluated_on="held-out")
    text = summary_markdown(_metrics({"a": _system(), "a+b": fused}))
    rows = _table(text)
    assert _cells(rows[2])[0] == "a" and _cells(rows[3])[0] == "a+b†"
    assert "† evaluated on a subset of the pairs only: held-out." in text
