"""The report's figures: matplotlib (Agg/SVG, no pyplot state) drawn from metrics.json blocks.

Every figure is returned as a `data:image/svg+xml;base64,...` URI so the report
stays one file; the URI is a `FigureData` (a `str`) that also keeps the matplotlib
figure, so `reidbench report --export figures` writes the very same figure as SVG
and PDF (report/export.py) without a second list of figures to maintain.

Legibility rule (checked in a browser at 390 px, tests/test_report_layout.py): a
figure is at most `MAX_WIDTH_IN` inches wide and its smallest text is `MIN_FONT_PT`
points, so at phone width (about 360 CSS px of content) text renders at 10 px or
more. Several panels are separate figures that the page lays out side by side on a
wide screen and stacks on a narrow one. SVG keeps curves sharp at any zoom; text is drawn as paths
(`svg.fonttype = "path"`), so a figure looks the same without any font installed
and no label can carry markup. Output is deterministic for given inputs (fixed
`svg.hashsalt`, no date in the metadata).
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # the report never opens a window, even when a display is present

from matplotlib.figure import Figure

from reidbench.report.format import is_num

# Colour-blind-safe: Okabe & Ito first, then Paul Tol's "muted" scheme.
PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#332288",
    "#882255",
    "#117733",
    "#999933",
    "#AA4499",
    "#44AA99",
)
DIFFERENT_COLOUR = "#8a8f98"  # the "different person" label in every histogram
INK = "#1f2328"
GRID = "#e6e8eb"

_RC: Any = {  # matplotlib's stubs type rc keys as literals; these are checked at import
    "svg.fonttype": "path",
    "svg.hashsalt": "reidbench-report",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.edgecolor": "#57606a",
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "xtick.color": "#57606a",
    "ytick.color": "#57606a",
    "legend.frameon": False,
    "legend.fontsize": 9,
    "lines.linewidth": 1.8,
}


MAX_WIDTH_IN = 4.3  # widest figure: 310 pt, shown at >= 360 CSS px on a phone
MIN_FONT_PT = 9.0  # smallest text in a figure: 9 pt * 360 / 310 = 10.4 px at 390 px


class FigureData(str):
    """A figure as a base64 SVG data URI (what the page embeds), carrying its matplotlib
    `Figure` for the publication exports and the size of its smallest text in points."""

    figure: Figure
    min_font_pt: float

    def __new__(cls, uri: str, figure: Figure, min_font_pt: float) -> FigureData:
        obj = super().__new__(cls, uri)
        obj.figure = figure
        obj.min_font_pt = min_font_pt
        return obj


def min_font_pt(fig: Figure) -> float:
    """Size in points of the smallest visible, non-empty text in a figure."""
    from matplotlib.text import Text

    sizes = [float(t.get_fontsize()) for t in fig.findobj(Text) if _shown(t)]
    return min(sizes) if sizes else 0.0


def _shown(t: Any) -> bool:
    ax = t.axes
    return bool(t.get_visible() and t.get_text().strip() and (ax is None or ax.get_visible()))


def system_colors(names: Sequence[str]) -> dict[str, str]:
    """One colour per system, by position, used by every figure and table swatch."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def label_text(name: str) -> str:
    """A system name safe for matplotlib text (a `$` would start mathtext)."""
    return str(name).replace("$", r"\$")


def _figure(
    width: float,
    height: float,
    margins: tuple[float, float, float, float] = (0.62, 0.15, 0.5, 0.32),
    **space: float,
) -> Figure:
    """A figure with fixed margins in inches (left, right, bottom, top).

    Fixed margins instead of matplotlib's constrained layout: the labels here have
    known sizes, and the layout solver took about 40% of the report's render time.
    """
    left, right, bottom, top = margins
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        **space,
    )
    return fig


def to_data_uri(fig: Figure) -> FigureData:
    """Render a figure as a base64 SVG data URI (deterministic bytes).

    The SVG's description records the smallest text size, so a browser check can
    compute how large that text renders without parsing paths.
    """
    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.draw_without_rendering()  # tick labels exist only once the figure is laid out
        smallest = min_font_pt(fig)
        fig.savefig(
            buf,
            format="svg",
            metadata={
                "Date": None,
                "Description": f"reidbench figure; smallest text {smallest:g} pt",
            },
        )
    uri = "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return FigureData(uri, fig, smallest)


def _nums(values: Any) -> list[float] | None:
    """A list of finite floats, or None when any entry is missing."""
    if not isinstance(values, list) or not values:
        return None
    if not all(is_num(v) for v in values):
        return None
    return [float(v) for v in values]


def _operating_point(block: Mapping[str, Any]) -> tuple[float, float, float, float] | None:
    """(fpr, tpr, recall, precision) at the system's threshold, when its curve can show it."""
    c = block.get("confusion")
    if not isinstance(c, dict) or block.get("n_decision_only"):
        return None  # decisions without scores are not on the curve
    tn, fp, fn, tp = (c.get(k) for k in ("tn", "fp", "fn", "tp"))
    if not (is_num(tn) and is_num(fp) and is_num(fn) and is_num(tp)) or tp + fp == 0:
        return None
    if tn + fp == 0 or tp + fn == 0:
        return None
    return fp / (tn + fp), tp / (tp + fn), tp / (tp + fn), tp / (tp + fp)


def _legend_label(text: str) -> str:
    """A legend entry wrapped so it fits under a narrow figure (long fused-system names)."""
    return "\n".join(textwrap.wrap(text, LEGEND_CHARS, break_on_hyphens=False)) or text


LEGEND_CHARS = 46  # characters per legend line at 9 pt in a MAX_WIDTH_IN figure


def _legend_height(labels: Sequence[str]) -> float:
    """Inches needed under the axes for a one-column legend of these labels."""
    lines = sum(label.count("\n") + 1 for label in labels)
    return 0.2 * lines + 0.1


def _roc_pr_drawn(systems: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
    return [
        (name, b)
        for name, b in systems.items()
        if isinstance(b.get("curves", {}).get("roc"), dict)
        and _nums(b["curves"]["roc"].get("fpr"))
        and _nums(b["curves"]["roc"].get("tpr"))
    ]


def _square_with_legend(labels: Sequence[str]) -> tuple[Figure, Any]:
    """A MAX_WIDTH_IN-wide figure with a square plot and its legend underneath."""
    legend_h = _legend_height(labels)
    width = 4.2
    side = width - 0.62 - 0.2
    fig = _figure(width, side + 0.55 + 0.32 + legend_h, margins=(0.62, 0.2, 0.55 + legend_h, 0.32))
    return fig, fig.subplots()


def _legend_below(ax: Any, n: int) -> None:
    if n:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncols=1)


def roc_plot(systems: Mapping[str, Mapping[str, Any]], colors: Mapping[str, str]) -> str | None:
    """ROC curves of every system overlaid, operating points marked (its own figure, so it
    sits beside the precision-recall figure on a wide screen and above it on a phone)."""
    drawn = _roc_pr_drawn(systems)
    if not drawn:
        return None
    labels = ["chance"]
    for name, b in drawn:
        auc = b.get("auc")
        labels.append(
            _legend_label(label_text(name) + (f" (AUC {auc:.3f})" if is_num(auc) else ""))
        )
    with matplotlib.rc_context(_RC):
        fig, ax = _square_with_legend(labels)
        ax.plot([0, 1], [0, 1], color="#b0b6bd", linestyle=":", linewidth=1, label=labels[0])
        for (name, b), label in zip(drawn, labels[1:], strict=True):
            roc = b["curves"]["roc"]
            ax.plot(roc["fpr"], roc["tpr"], color=colors[name], label=label)
            op = _operating_point(b)
            if op is not None:
                _mark(ax, op[0], op[1], colors[name])
        ax.set(
            xlim=(-0.01, 1.01),
            ylim=(-0.01, 1.01),
            xlabel="false accept rate (FPR)",
            ylabel="true accept rate (TPR)",
            title="ROC",
        )
        ax.set_aspect("equal")
        _legend_below(ax, len(labels))
    return to_data_uri(fig)


def pr_plot(
    systems: Mapping[str, Mapping[str, Any]],
    colors: Mapping[str, str],
    prevalence: float | None,
) -> str | None:
    """Precision-recall curves of every system overlaid, operating points marked."""
    drawn = []
    for name, b in _roc_pr_drawn(systems):
        pr = b["curves"].get("pr")
        if isinstance(pr, dict) and _nums(pr.get("recall")) and _nums(pr.get("precision")):
            ap = b.get("pr_auc")
            tag = f" (AP {ap:.3f})" if is_num(ap) else ""
            drawn.append((name, b, pr, _legend_label(label_text(name) + tag)))
    if not drawn:
        return None
    labels = [d[3] for d in drawn] + (["chance (prevalence)"] if is_num(prevalence) else [])
    with matplotlib.rc_context(_RC):
        fig, ax = _square_with_legend(labels)
        for name, b, pr, label in drawn:
            ax.step(pr["recall"], pr["precision"], where="post", color=colors[name], label=label)
            op = _operating_point(b)
            if op is not None:
                _mark(ax, op[2], op[3], colors[name])
        if is_num(prevalence):
            ax.axhline(
                prevalence, color="#b0b6bd", linestyle=":", linewidth=1, label="chance (prevalence)"
            )
        ax.set(
            xlim=(-0.01, 1.01),
            ylim=(-0.01, 1.01),
            xlabel="recall",
            ylabel="precision",
            title="Precision-recall",
        )
        ax.set_aspect("equal")
        _legend_below(ax, len(labels))
    return to_data_uri(fig)


def _mark(ax: Any, x: float, y: float, colour: str) -> None:
    """An operating point: a filled dot with a white rim, above the curves."""
    ax.plot(
        [x],
        [y],
        "o",
        color=colour,
        markersize=6.5,
        markeredgecolor="white",
        markeredgewidth=1.2,
        zorder=5,
    )


def calibration_plot(
    systems: Mapping[str, Mapping[str, Any]], colors: Mapping[str, str]
) -> str | None:
    """Reliability diagram: fraction of same-person pairs against the mean normalised score."""
    drawn = []
    for name, b in systems.items():
        cal = b.get("curves", {}).get("calibration")
        bins = cal.get("bins") if isinstance(cal, dict) else None
        if bins:
            drawn.append((name, cal, bins))
    if not drawn:
        return None
    labels = ["perfect"]
    for name, cal, _ in drawn:
        ece = cal.get("ece")
        labels.append(
            _legend_label(label_text(name) + (f" (ECE {ece:.3f})" if is_num(ece) else ""))
        )
    with matplotlib.rc_context(_RC):
        fig, ax = _square_with_legend(labels)
        ax.plot([0, 1], [0, 1], color="#b0b6bd", linestyle=":", linewidth=1, label="perfect")
        total = max(sum(int(x["n"]) for x in bins) for _, _, bins in drawn) or 1
        for (name, _, bins), label in zip(drawn, labels[1:], strict=True):
            xs = [x["mean_predicted"] for x in bins]
            ys = [x["fraction_positive"] for x in bins]
            sizes = [12 + 160 * math.sqrt(x["n"] / total) for x in bins]
            ax.plot(xs, ys, color=colors[name], linewidth=1.4, label=label)
            ax.scatter(
                xs,
                ys,
                s=sizes,
                color=colors[name],
                alpha=0.75,
                edgecolors="white",
                linewidths=0.8,
                zorder=4,
            )
        ax.set(
            xlim=(-0.01, 1.01),
            ylim=(-0.01, 1.01),
            xlabel="mean score / scale in bin",
            ylabel="fraction of same-person pairs",
            title="Calibration (marker area ~ pairs)",
        )
        ax.set_aspect("equal")
        _legend_below(ax, len(labels))
    return to_data_uri(fig)


def _occupied_range(edges: list[float], counts: list[int]) -> tuple[float, float]:
    """x-limits around the non-empty bins (one empty bin of margin each side)."""
    used = [i for i, c in enumerate(counts) if c]
    if not used:
        return edges[0], edges[-1]
    lo, hi = max(used[0] - 1, 0), min(used[-1] + 2, len(edges) - 1)
    return edges[lo], edges[hi]


def histogram_plots(
    systems: Mapping[str, Mapping[str, Any]], colors: Mapping[str, str]
) -> list[tuple[str, FigureData]]:
    """Score histograms by true label, one figure per system (name, figure), threshold
    marked. Separate figures, so the page shows three across on a wide screen and one
    per row on a phone, each at a readable size."""
    out = []
    for name, b in systems.items():
        h = (b.get("distributions") or {}).get("histogram")
        if not isinstance(h, dict):
            continue
        edges, same, diff = _nums(h.get("edges")), h.get("same"), h.get("different")
        if edges and isinstance(same, list) and isinstance(diff, list) and (sum(same) + sum(diff)):
            out.append((name, _histogram(name, b, edges, same, diff, colors[name])))
    return out


def _histogram(
    name: str,
    b: Mapping[str, Any],
    edges: list[float],
    same: list[int],
    diff: list[int],
    colour: str,
) -> FigureData:
    # Long names (fused systems) wrap onto extra title lines instead of running off the figure.
    title = textwrap.wrap(label_text(name), 40, break_on_hyphens=False) or [""]
    extra = 0.18 * (len(title) - 1)
    with matplotlib.rc_context(_RC):
        fig = _figure(4.2, 3.0 + extra, margins=(0.62, 0.15, 0.5, 0.32 + extra))
        ax = fig.subplots()
        ax.stairs(diff, edges, fill=True, color=DIFFERENT_COLOUR, alpha=0.45)
        ax.stairs(diff, edges, color=DIFFERENT_COLOUR, linewidth=1.1, label="different person")
        ax.stairs(same, edges, fill=True, color=colour, alpha=0.45)
        ax.stairs(same, edges, color=colour, linewidth=1.3, label="same person")
        lo, hi = _occupied_range(edges, [a + c for a, c in zip(same, diff, strict=True)])
        thr = b.get("threshold")
        if is_num(thr):
            ax.axvline(thr, color=INK, linestyle="--", linewidth=1.1, label="threshold")
            lo, hi = min(lo, thr), max(hi, thr)
        ax.set_xlim(lo, hi)
        ax.set_title("\n".join(title), color=colour, fontweight="bold", loc="left")
        ax.set_xlabel(f"score (scale 0-{b.get('scale', 1):g})")
        ax.set_ylabel("pairs")
        ax.grid(axis="x", visible=False)
        ax.legend(loc="best", handlelength=1.4)
    return to_data_uri(fig)


def cmc_plot(retrieval: Mapping[str, Mapping[str, Any]], colors: Mapping[str, str]) -> str | None:
    """Cumulative matching characteristic of each system that ran retrieval."""
    drawn = [(n, c) for n, r in retrieval.items() if (c := _nums(r.get("cmc")))]
    if not drawn:
        return None
    labels = []
    for name, cmc in drawn:
        r1 = retrieval[name].get("rank1", cmc[0])
        labels.append(
            _legend_label(label_text(name) + (f" (rank-1 {r1:.3f})" if is_num(r1) else ""))
        )
    legend_h = _legend_height(labels)
    with matplotlib.rc_context(_RC):
        fig = _figure(4.2, 3.2 + legend_h, margins=(0.62, 0.2, 0.55 + legend_h, 0.32))
        ax = fig.subplots()
        for (name, cmc), label in zip(drawn, labels, strict=True):
            ranks = list(range(1, len(cmc) + 1))
            ax.plot(ranks, cmc, color=colors.get(name, INK), label=label)
        ax.set(
            xlim=(1, max(len(c) for _, c in drawn)),
            ylim=(0, 1.01),
            xlabel="rank",
            ylabel="matching rate",
            title="CMC",
        )
        _legend_below(ax, len(labels))
    return to_data_uri(fig)


def cascade_plot(
    curve: Sequence[Mapping[str, Any]], operating: Mapping[str, Any] | None, colour: str
) -> str | None:
    """A cascade's held-out F1 and AUC against the fraction of pairs sent to the LVLM, with
    the LVLM cost per 1,000 pairs on a second axis and the operating point marked."""
    pts = [p for p in curve if isinstance(p, Mapping) and is_num(p.get("fraction_sent"))]
    pts.sort(key=lambda p: p["fraction_sent"])
    if len(pts) < 2:
        return None
    xs = [p["fraction_sent"] for p in pts]

    def series(key: str) -> tuple[list[float], list[float]]:
        kept = [(x, p[key]) for x, p in zip(xs, pts, strict=True) if is_num(p.get(key))]
        return [x for x, _ in kept], [y for _, y in kept]

    with matplotlib.rc_context(_RC):
        fig = _figure(4.3, 3.9, margins=(0.62, 0.62, 1.3, 0.15))
        ax = fig.subplots()
        lines = []
        for key, style, label in (("f1", "-", "F1"), ("auc", "--", "AUC")):
            x, y = series(key)
            if x:
                lines += ax.plot(x, y, style, color=colour, marker="o", markersize=3, label=label)
        x, y = series("usd_per_1000_pairs")
        if x:
            right = ax.twinx()
            right.grid(False)
            right.spines["right"].set_visible(True)
            lines += right.plot(
                x, y, ":", color=DIFFERENT_COLOUR, linewidth=1.6, label="USD / 1,000 pairs (right)"
            )
            right.set_ylabel("LVLM USD per 1,000 pairs")
            right.set_ylim(bottom=0)
        if operating and is_num(operating.get("fraction_sent")):
            ax.axvline(operating["fraction_sent"], color=INK, linewidth=1, linestyle="-.")
            if is_num(operating.get("f1")):
                lines += ax.plot(
                    [operating["fraction_sent"]],
                    [operating["f1"]],
                    "o",
                    color=colour,
                    markersize=8,
                    markeredgecolor="white",
                    markeredgewidth=1.5,
                    label="operating point",
                    zorder=5,
                )
        ax.set(
            xlim=(-0.02, 1.02),
            xlabel="share of held-out pairs sent to the LVLM",
            ylabel="F1 / AUC (held-out)",
        )
        ax.legend(
            lines,
            [str(ln.get_label()) for ln in lines],
            loc="upper center",
            bbox_to_anchor=(0.5, -0.2),
            ncols=2,
        )
    return to_data_uri(fig)


def cmc_before_after(before: Any, after: Any, colour: str) -> str | None:
    """CMC of a retrieval list before and after LVLM re-ranking."""
    b, a = _nums(before), _nums(after)
    if not b or not a:
        return None
    with matplotlib.rc_context(_RC):
        fig = _figure(4.2, 3.4)
        ax = fig.subplots()
        ax.plot(
            range(1, len(b) + 1), b, color=DIFFERENT_COLOUR, label=f"before (rank-1 {b[0]:.3f})"
        )
        ax.plot(range(1, len(a) + 1), a, color=colour, label=f"after (rank-1 {a[0]:.3f})")
        ax.set(
            xlim=(1, max(len(a), len(b))),
            ylim=(0, 1.01),
            xlabel="rank",
            ylabel="matching rate",
            title="CMC before and after re-ranking",
        )
        ax.legend(loc="lower right")
    return to_data_uri(fig)
