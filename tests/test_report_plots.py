"""Figures: deterministic SVG, text as paths, one colour per system, robust to odd input."""

from __future__ import annotations

import base64
import re

import pytest

from reidbench.report import plots


def _svg(uri: str) -> str:
    assert uri.startswith("data:image/svg+xml;base64,")
    return base64.b64decode(uri.split(",", 1)[1]).decode()


def _system(shift: float) -> dict:
    fpr = [0.0, 0.1, 0.3, 1.0]
    tpr = [0.0, 0.5 + shift, 0.8, 1.0]
    return {
        "auc": 0.8,
        "pr_auc": 0.82,
        "scale": 1.0,
        "threshold": 0.6,
        "confusion": {"tn": 8, "fp": 2, "fn": 3, "tp": 7},
        "curves": {
            "roc": {"fpr": fpr, "tpr": tpr},
            "pr": {"precision": [0.5, 0.7, 1.0], "recall": [1.0, 0.6, 0.0]},
            "calibration": {
                "bins": [
                    {"n": 5, "mean_predicted": 0.3, "fraction_positive": 0.2},
                    {"n": 15, "mean_predicted": 0.7, "fraction_positive": 0.6},
                ],
                "ece": 0.1,
            },
        },
        "distributions": {
            "histogram": {
                "edges": [0.0, 0.25, 0.5, 0.75, 1.0],
                "same": [0, 1, 4, 5],
                "different": [3, 5, 2, 0],
            }
        },
    }


def test_colours_are_stable_and_distinct():
    names = [f"s{i}" for i in range(len(plots.PALETTE))]
    colours = plots.system_colors(names)
    assert len(set(colours.values())) == len(names)
    assert plots.system_colors(["a", "b"]) == {"a": plots.PALETTE[0], "b": plots.PALETTE[1]}


@pytest.mark.slow
def test_figures_are_deterministic_svg_without_text_or_scripts():
    systems = {"a $x$": _system(0.0), "<b>": _system(0.1)}
    colours = plots.system_colors(list(systems))
    for make in (
        lambda: plots.roc_plot(systems, colours),
        lambda: plots.pr_plot(systems, colours, 0.5),
        lambda: plots.calibration_plot(systems, colours),
        lambda: "".join(uri for _, uri in plots.histogram_plots(systems, colours)),
        lambda: plots.cmc_plot({"a $x$": {"cmc": [0.2, 0.5]}, "<b>": {"cmc": [0.1, 0.3]}}, colours),
    ):
        first, second = make(), make()
        assert first == second
        # histograms: one figure per system, checked together
        svg = "".join(_svg("data:" + part) for part in first.split("data:")[1:])
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert "<script" not in svg and "<text" not in svg  # labels are paths
        assert not re.search(r"<dc:date>", svg)
        assert plots.PALETTE[0].lower() in svg.lower() and plots.PALETTE[1].lower() in svg.lower()


def test_nothing_to_draw_gives_none():
    empty = {"x": {"curves": {"roc": None, "calibration": None}, "distributions": None}}
    colours = plots.system_colors(["x"])
    assert plots.roc_plot(empty, colours) is None
    assert plots.pr_plot(empty, colours, 0.5) is None
    assert plots.calibration_plot(empty, colours) is None
    assert plots.histogram_plots(empty, colours) == []
    assert plots.cmc_plot({"x": {"cmc": []}}, colours) is None
    assert plots.cascade_plot([{"fraction_sent": 0.0, "f1": 0.5}], None, "#000000") is None
    assert plots.cmc_before_after([], [0.5], "#000000") is None


@pytest.mark.slow
def test_cascade_curve_has_a_cost_axis_and_the_operating_point():
    curve = [
        {"fraction_sent": f, "f1": 0.6 + f / 10, "auc": 0.8, "usd_per_1000_pairs": 6 * f}
        for f in (0.0, 0.5, 1.0)
    ]
    curve.append({"fraction_sent": None, "f1": 0.1})  # an unusable point is skipped
    svg = _svg(plots.cascade_plot(curve, curve[1], plots.PALETTE[2]))
    assert 'id="axes_2"' in svg  # the cost got its own (twin) axes
    assert plots.PALETTE[2].lower() in svg.lower()
    before_after = _svg(plots.cmc_before_after([0.4, 0.6], [0.5, 0.7], plots.PALETTE[0]))
    assert plots.DIFFERENT_COLOUR.lower() in before_after.lower()


@pytest.mark.slow
def test_figures_stay_legible_on_a_phone():
    """Every figure is at most MAX_WIDTH_IN wide with text of at least MIN_FONT_PT, and
    says so in its SVG (the browser layout test reads it)."""
    systems = {"fused(osnet_x1_0+efficientnet-lite0)" * 2: _system(0.0), "b": _system(0.1)}
    colours = plots.system_colors(list(systems))
    figures = [
        plots.roc_plot(systems, colours),
        plots.pr_plot(systems, colours, 0.5),
        plots.calibration_plot(systems, colours),
        *(u for _, u in plots.histogram_plots(systems, colours)),
        plots.cmc_plot({"a": {"cmc": [0.2, 0.5]}}, colours),
        plots.cascade_plot(
            [{"fraction_sent": f, "f1": 0.6, "usd_per_1000_pairs": f} for f in (0, 1)],
            {"fraction_sent": 0.5, "f1": 0.6},
            "#000000",
        ),
        plots.cmc_before_after([0.4, 0.6], [0.5, 0.7], plots.PALETTE[0]),
    ]
    for uri in figures:
        assert isinstance(uri, plots.FigureData)
        width_in, _ = uri.figure.get_size_inches()
        assert width_in <= plots.MAX_WIDTH_IN
        assert uri.min_font_pt >= plots.MIN_FONT_PT
        svg = _svg(uri)
        assert f"smallest text {uri.min_font_pt:g} pt" in svg
        width_pt = float(re.search(r'<svg[^>]*\swidth="([\d.]+)pt"', svg).group(1))
        assert width_pt == pytest.approx(72 * width_in)
        # at a phone's content width (362 CSS px) the smallest text is at least 10 px
        assert uri.min_font_pt * 362 / width_pt >= 10
