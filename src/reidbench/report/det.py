"""DET curves of every system overlaid (metrics.json `det`): FNR against FAR with FAR on a
log axis, the biometrics convention for verification. Operating points are marked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from reidbench.report.format import is_num
from reidbench.report.model import as_map
from reidbench.report.plots import (
    _RC,
    INK,
    _legend_below,
    _legend_label,
    _nums,
    _square_with_legend,
    label_text,
    to_data_uri,
)


def det_figure(det: Mapping[str, Any], colours: Mapping[str, str]) -> Figure | None:
    """The DET figure (for the report and for export as SVG/PDF); None without curves.

    FAR = 0 cannot sit on a log axis: the axis starts at 1 / (different-person pairs)
    of the largest system, and points left of it are not drawn."""
    drawn = []
    for name, b in as_map(det.get("systems")).items():
        b = as_map(b)
        far, fnr = _nums(b.get("far")), _nums(b.get("fnr"))
        if far and fnr and len(far) == len(fnr):
            drawn.append((str(name), far, fnr, as_map(b.get("operating_point")), b))
    if not drawn:
        return None
    n_diff = max(int(b.get("n_different") or 1) for *_, b in drawn)
    x_min = 1.0 / max(n_diff, 1)
    labels = [_legend_label(label_text(name)) for name, *_ in drawn]
    # Square plot, legend underneath: the plots.MAX_WIDTH_IN / MIN_FONT_PT rule.
    with matplotlib.rc_context(_RC):
        fig, ax = _square_with_legend(labels)
        for (name, far, fnr, op, _), label in zip(drawn, labels, strict=True):
            pts = [(x, y) for x, y in zip(far, fnr, strict=True) if x >= x_min]
            colour = colours.get(name, INK)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colour, label=label)
            if is_num(op.get("far")) and is_num(op.get("fnr")) and op["far"] >= x_min:
                ax.plot(
                    [op["far"]],
                    [op["fnr"]],
                    "o",
                    color=colour,
                    markersize=6,
                    markeredgecolor="white",
                    markeredgewidth=1.2,
                    zorder=5,
                )
        ax.set_xscale("log")
        ax.set(
            xlim=(x_min, 1.0),
            ylim=(0, 1.01),
            xlabel="false accept rate (FAR, log scale)",
            ylabel="false reject rate (FNR)",
            title="DET",
        )
        _legend_below(ax, len(labels))
    return fig


def det_plot(det: Any, colours: Mapping[str, str]) -> str | None:
    fig = det_figure(as_map(det), colours)
    return to_data_uri(fig) if fig is not None else None
