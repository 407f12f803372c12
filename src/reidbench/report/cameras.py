"""Accuracy per camera pair (metrics.json `camera_pairs`): a heat map per system (cameras x
cameras, each cell with its n; cells with few pairs greyed) and the same numbers as a table."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from reidbench.report import format as fmt
from reidbench.report.model import Cell, Row, Table, as_map
from reidbench.report.plots import _RC, INK, MIN_FONT_PT, _figure, label_text, to_data_uri

SMALL = "#d0d7de"  # cells with fewer than min_n pairs


def _ink(acc: float | None) -> str:
    """White text on the dark ends of the colour map, dark text elsewhere."""
    return "#ffffff" if acc is not None and (acc < 0.6 or acc > 0.93) else INK


def _cells(cams: Mapping[str, Any]) -> dict[str, dict[tuple[int, int], tuple[int, float | None]]]:
    out: dict[str, dict[tuple[int, int], tuple[int, float | None]]] = {}
    for name, cells in as_map(cams.get("systems")).items():
        got = {}
        for c in cells if isinstance(cells, list) else []:
            pair = as_map(c).get("cams")
            if isinstance(pair, list) and len(pair) == 2 and fmt.is_num(c.get("n")):
                acc = c.get("accuracy")
                got[(int(pair[0]), int(pair[1]))] = (int(c["n"]), acc if fmt.is_num(acc) else None)
        if got:
            out[str(name)] = got
    return out


def camera_table(cams: Any, colours: Mapping[str, str]) -> Table | None:
    """Rows: camera pairs; columns: systems; each cell accuracy with its n."""
    cams = as_map(cams)
    cells = _cells(cams)
    if not cells:
        return None
    min_n = cams.get("min_n") or 0
    keys = sorted({k for c in cells.values() for k in c})
    names = list(cells)
    rows = []
    for key in keys:
        out = []
        for name in names:
            n, acc = cells[name].get(key, (0, None))
            if not n:
                out.append(Cell(fmt.DASH, note="no pairs"))
                continue
            cell = Cell(fmt.num(acc), sub=f"n = {fmt.integer(n)}")
            if n < min_n:
                cell.style = "color: #818b98"
                cell.note = f"fewer than {min_n} pairs: too few to read"
            out.append(cell)
        rows.append(Row(f"cameras {key[0]}–{key[1]}", out))
    table = Table([(n, "") for n in names], rows, head_label="Camera pair")
    if min_n:
        table.add_note(f"Grey: fewer than {min_n} pairs in the cell, too few to read.")
    return table


def camera_figure(cams: Any, colours: Mapping[str, str]) -> Figure | None:
    """One heat-map panel per system: accuracy per (camera, camera), n in each cell."""
    cams = as_map(cams)
    cells = _cells(cams)
    ids = [int(c) for c in cams.get("cameras") or [] if fmt.is_num(c)]
    if not cells or not ids:
        return None
    index = {c: i for i, c in enumerate(ids)}
    k = len(ids)
    min_n = cams.get("min_n") or 0
    # One panel per row, at most plots.MAX_WIDTH_IN wide, so cell text stays legible on a phone.
    per_row = 1
    n_rows = math.ceil(len(cells) / per_row)
    side = min(3.6, max(2.4, 0.42 * k + 0.9))
    annotate = k <= 8
    with matplotlib.rc_context(_RC):
        fig = _figure(
            per_row * side + 0.6,
            n_rows * (side + 0.4),
            margins=(0.55, 0.1, 0.45, 0.35),
            wspace=0.35,
            hspace=0.55,
        )
        axes = np.atleast_1d(fig.subplots(n_rows, per_row, squeeze=False)).ravel()
        cmap = matplotlib.colormaps["RdYlGn"]
        for ax, (name, got) in zip(axes, cells.items(), strict=False):
            grid = np.full((k, k), np.nan)
            for (a, b), (_n, acc) in got.items():
                if a in index and b in index and acc is not None:
                    grid[index[a], index[b]] = grid[index[b], index[a]] = acc
            ax.imshow(grid, cmap=cmap, vmin=0.5, vmax=1.0, origin="upper")
            for (a, b), (n, acc) in got.items():
                if a not in index or b not in index:
                    continue
                for i, j in {(index[a], index[b]), (index[b], index[a])}:
                    small = n < min_n
                    if small:
                        ax.add_patch(
                            matplotlib.patches.Rectangle(
                                (j - 0.5, i - 0.5), 1, 1, color=SMALL, zorder=2
                            )
                        )
                    if annotate:
                        ax.text(
                            j,
                            i,
                            f"{fmt.num(acc, 2)}\nn={n}",
                            ha="center",
                            va="center",
                            fontsize=MIN_FONT_PT,
                            color="#59636e" if small else _ink(acc),
                            zorder=3,
                        )
            ax.set_xticks(range(k), [str(c) for c in ids])
            ax.set_yticks(range(k), [str(c) for c in ids])
            ax.grid(False)
            ax.set_title(label_text(name), color=colours.get(name, INK), loc="left", fontsize=9)
            ax.set_xlabel("camera")
            ax.set_ylabel("camera")
        for ax in axes[len(cells) :]:
            ax.set_visible(False)
    return fig


def camera_plot(cams: Any, colours: Mapping[str, str]) -> str | None:
    fig = camera_figure(cams, colours)
    return to_data_uri(fig) if fig is not None else None
