"""Number formatting shared by the HTML report and the Markdown summary."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reidbench.report import format as fmt
from reidbench.report.model import Cell, Row, Table, collect_notes, number, to_tree


@given(
    st.floats(0, 1),
    st.floats(0, 1),
    st.floats(0, 1),
)
def test_with_ci_shape(v, a, b):
    lo, hi = sorted((a, b))
    text = fmt.with_ci(v, {"low": lo, "high": hi})
    assert re.fullmatch(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", text)
    assert float(text.split()[0]) == pytest.approx(v, abs=5e-4)


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, "0.5", True])
def test_missing_numbers_are_dashes(bad):
    assert fmt.num(bad) == fmt.DASH
    assert fmt.with_ci(bad, {"low": 0.1, "high": 0.2}) == fmt.DASH
    assert fmt.usd(bad) == fmt.pvalue(bad) == fmt.pct(bad) == fmt.DASH


def test_specific_formats():
    assert fmt.with_ci(0.9123, {"low": 0.8871, "high": 0.9339}) == "0.912 [0.887, 0.934]"
    assert fmt.with_ci(0.9, None) == "0.900"
    assert fmt.pvalue(2.2258e-22) == "2.23e-22"
    assert fmt.pvalue(0.0421) == "0.0421" and fmt.pvalue(1.0) == "1"
    assert [fmt.usd(x) for x in (0, 0.00265, 0.315, 7.2272, 1234.5)] == [
        "$0",
        "$0.0027",
        "$0.315",
        "$7.23",
        "$1,234",
    ]
    assert fmt.threshold(0.93369546, 1.0) == "0.9337" and fmt.threshold(50, 100.0) == "50.0"
    assert fmt.pct(0.875) == "87.5%" and fmt.integer(117900) == "117,900"


def test_degenerate_interval_is_not_shown():
    assert number(1.0, ci={"low": 1.0, "high": 1.0}).ci == ""
    assert number(0.5, ci={"low": 0.4, "high": 0.6}).ci == "[0.400, 0.600]"
    assert number(None, "one class only").note == "one class only"


def test_notes_grouped_by_reason():
    t = Table(
        [("p50", ""), ("p95", "")],
        [
            Row("a", [Cell(fmt.DASH, note="no latency"), Cell(fmt.DASH, note="no latency")]),
            Row("b", [Cell(fmt.DASH, note="no latency"), Cell("1.0")]),
        ],
    )
    assert collect_notes(t).notes == ["p50, p95 of a, b: no latency"]


def test_tree_of_unknown_blocks():
    node = to_tree({"m": "x", "curve": list(range(40)), "rows": [{"a": 1}, {"a": 2, "b": None}]})
    kinds = {k: v.kind for k, v in node.items}
    assert kinds == {"m": "scalar", "curve": "scalar", "rows": "records"}
    assert dict(node.items)["curve"].text.startswith("40 values: 0, 1, 2, …, 38, 39")
    assert dict(node.items)["rows"].rows == [["1", "—"], ["2", "—"]]
