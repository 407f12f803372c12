"""CMC curves with their bootstrap band (metrics.json `retrieval.cmc_band`: query identities
resampled); systems without a band are drawn as plain curves."""

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
    _figure,
    _legend_below,
    _legend_height,
    _legend_label,
    _nums,
    label_text,
    to_data_uri,
)


def cmc_band_figure(retrieval: Mapping[str, Any], colours: Mapping[str, str]) -> Figure | None:
    """None unless at least one system has a band (the plain CMC figure is used then)."""
    drawn: list[tuple[str, list[float], tuple[list[float], list[float]] | None, Any]] = []
    for name, entry in retrieval.items():
        r = as_map(entry)
        cmc = _nums(r.get("cmc"))
        if cmc:
            band = as_map(r.get("cmc_band"))
            lo, hi = _nums(band.get("low")), _nums(band.get("high"))
            pair = (lo, hi) if lo and hi and len(lo) == len(hi) == len(cmc) else None
            drawn.append((str(name), cmc, pair, r))
    if not any(b for _, _, b, _ in drawn):
        return None
    labels = []
    for name, cmc, _, r in drawn:
        r1 = r.get("rank1", cmc[0])
        labels.append(
            _legend_label(label_text(name) + (f" (rank-1 {r1:.3f})" if is_num(r1) else ""))
        )
    legend_h = _legend_height(labels)
    # The plain CMC figure's size and legend (plots.MAX_WIDTH_IN / MIN_FONT_PT rule).
    with matplotlib.rc_context(_RC):
        fig = _figure(4.2, 3.2 + legend_h, margins=(0.62, 0.2, 0.55 + legend_h, 0.32))
        ax = fig.subplots()
        for (name, cmc, shade, _), label in zip(drawn, labels, strict=True):
            colour = colours.get(name, INK)
            ranks = list(range(1, len(cmc) + 1))
            if shade:
                ax.fill_between(ranks, shade[0], shade[1], color=colour, alpha=0.18, linewidth=0)
            ax.plot(ranks, cmc, color=colour, label=label)
        ax.set(
            xlim=(1, max(len(c) for _, c, _, _ in drawn)),
            ylim=(0, 1.01),
            xlabel="rank",
            ylabel="matching rate",
            title="CMC, 95% band (identities resampled)",
        )
        _legend_below(ax, len(labels))
    return fig


def cmc_band_plot(retrieval: Mapping[str, Any], colours: Mapping[str, str]) -> str | None:
    fig = cmc_band_figure(retrieval, colours)
    return to_data_uri(fig) if fig is not None else None
