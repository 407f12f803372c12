"""Publication exports: `reidbench report DIR --export latex,csv,figures` -> DIR/export/.

What is exported is found, not listed: every `report.model.Table` and every figure
(`plots.FigureData`) anywhere in the report's context (`build_context`), so a table or
figure added to the report later is exported too, under a name made from where it sits
(context key, then section key / system name / heading). Names are stable for a given
run: `table-summary.tex`, `table-summary.csv`, `figure-roc.svg`, `figure-roc.pdf`, ...
(see docs/report.md).

- latex: one booktabs `tabular` per table (no float: `\\input` it inside your own
  `table` environment), names and text escaped, each value with its 95% interval.
  A table also compiles without the booktabs package: each file falls back to
  `\\hline` through `\\providecommand` when `\\toprule` is undefined.
- csv: one file per table (stdlib csv, UTF-8); an interval becomes two numeric columns
  ("<column> 95% CI low/high"), a second line under a value ("<column> detail").
- figures: each figure as SVG (text as paths, `svg.fonttype = "path"`: identical
  without any font installed) and PDF (`pdf.fonttype = 42`: TrueType fonts embedded,
  text stays selectable and journals accept it).

Everything is written into a temporary folder first and moved into place only when
all files were made, so a failure leaves no half-written export behind.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reidbench.errors import UserError
from reidbench.report import format as fmt
from reidbench.report.model import Table
from reidbench.report.plots import FigureData

KINDS = ("latex", "csv", "figures")
EXPORT_DIR = "export"


def parse_kinds(text: str) -> list[str]:
    """The export kinds named in a comma-separated list ("latex,csv,figures" or "all")."""
    names = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    if names == ["all"]:
        return list(KINDS)
    bad = [n for n in names if n not in KINDS]
    if bad or not names:
        raise UserError(
            f"--export {text!r}: unknown export kind {', '.join(map(repr, bad)) or '(none)'}; "
            f"use a comma-separated list of {', '.join(KINDS)} (or all)"
        )
    return list(dict.fromkeys(names))


# --- finding every table and figure -------------------------------------------------


@dataclass
class Exhibit:
    name: str  # stable file stem without the "table-"/"figure-" prefix
    path: list[str]  # where it sits in the report, for the title
    item: Any  # Table or FigureData


def slug(text: str, limit: int = 40) -> str:
    """A file-name part: lower-case ASCII letters and digits joined by '-'."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    out = "-".join(re.findall(r"[a-z0-9]+", ascii_text.lower()))
    return out[:limit].rstrip("-") or "x"


def _label(value: Any) -> str | None:
    """The name an element carries itself: a dataclass's key/name, a tuple's text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for attr in ("key", "name"):
            v = getattr(value, attr, None)
            if isinstance(v, str) and v:
                return v
        return None
    if isinstance(value, tuple):
        for v in value:
            if isinstance(v, str) and not isinstance(v, FigureData) and v:
                return v
    return None


def _walk(value: Any, path: list[str], out: list[tuple[list[str], Any]]) -> None:
    if isinstance(value, (Table, FigureData)):
        out.append((path, value))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _walk(v, [*path, str(k)], out)
    elif isinstance(value, tuple):  # a record such as (heading, Table): named by its parent
        for v in value:
            _walk(v, path, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            label = _label(v) or (str(i + 1) if len(value) > 1 else None)
            if label and path and slug(label) == slug(path[-1]):
                label = None  # a block titled like its only table adds nothing
            _walk(v, [*path, label] if label else path, out)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _walk(getattr(value, f.name), path, out)


def collect(context: Mapping[str, Any]) -> tuple[list[Exhibit], list[Exhibit]]:
    """(tables, figures) of a report context, in page order, with unique stable names.

    Tables without rows are left out (the page shows "Nothing to show" for them).
    """
    found: list[tuple[list[str], Any]] = []
    _walk(context, [], found)
    tables: list[Exhibit] = []
    figures: list[Exhibit] = []
    seen: set[str] = set()
    for path, item in found:
        if isinstance(item, Table) and not item.rows:
            continue
        parts = path[1:] if path and path[0] == "extras" else path  # "extras" says nothing
        base = "-".join(slug(p) for p in parts) or "x"
        name, n = base, 1
        kind = "table" if isinstance(item, Table) else "figure"
        while f"{kind}-{name}" in seen:
            n += 1
            name = f"{base}-{n}"
        seen.add(f"{kind}-{name}")
        (tables if kind == "table" else figures).append(Exhibit(name, path, item))
    return tables, figures


# --- CSV -------------------------------------------------------------------------------

_CI = re.compile(r"^\[\s*([-+]?[0-9.]+(?:e[-+]?\d+)?),\s*([-+]?[0-9.]+(?:e[-+]?\d+)?)\s*\]$")


def _plain(text: str) -> str:
    return "" if text == fmt.DASH else text


def csv_rows(table: Table) -> list[list[str]]:
    """The table as rows of strings: header first, then one row per table row.

    Values are the page's text (a dash becomes empty); a column with intervals gets
    "low" and "high" columns next to it, a column with second lines a "detail" column.
    """
    labels = [label for label, _ in table.columns]
    has_sub = any(r.sub for r in table.rows)
    with_ci = [
        any(i < len(r.cells) and r.cells[i].ci for r in table.rows) for i in range(len(labels))
    ]
    with_detail = [
        any(i < len(r.cells) and r.cells[i].sub for r in table.rows) for i in range(len(labels))
    ]
    header = [table.head_label] + ([f"{table.head_label} detail"] if has_sub else [])
    for label, ci, detail in zip(labels, with_ci, with_detail, strict=True):
        header.append(label)
        if ci:
            header += [f"{label} 95% CI low", f"{label} 95% CI high"]
        if detail:
            header.append(f"{label} detail")
    rows = [header]
    for r in table.rows:
        row = [r.head] + ([r.sub] if has_sub else [])
        for i, (ci, detail) in enumerate(zip(with_ci, with_detail, strict=True)):
            cell = r.cells[i] if i < len(r.cells) else None
            row.append(_plain(cell.text) if cell else "")
            if ci:
                m = _CI.match(cell.ci) if cell and cell.ci else None
                row += [m.group(1), m.group(2)] if m else ["", ""]
            if detail:
                row.append(cell.sub if cell else "")
        rows.append(row)
    return rows


def table_csv(table: Table) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(csv_rows(table))
    return buf.getvalue()


# --- LaTeX -----------------------------------------------------------------------------

_TEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    # Characters pdflatex does not know out of the box (names and notes use them).
    "—": "---",
    "–": "--",
    "−": "$-$",
    "±": r"$\pm$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "×": r"$\times$",
    "†": r"\textdagger{}",
    "→": r"$\rightarrow$",
    "←": r"$\leftarrow$",
    "…": r"\ldots{}",
    "·": r"\textperiodcentered{}",
    "°": r"\textdegree{}",
    "µ": r"$\mu$",
    "’": "'",
    "‘": "`",
    "“": "``",
    "”": "''",
}


def tex_escape(text: Any) -> str:
    """Text safe in a LaTeX document compiled by pdflatex: specials escaped, other
    non-ASCII characters reduced to ASCII (accents dropped) or shown as '?'."""
    out = []
    for ch in str(text):
        if ch in _TEX_SPECIALS:
            out.append(_TEX_SPECIALS[ch])
        elif ord(ch) < 128:
            out.append(ch if ch.isprintable() else " ")
        else:
            plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(tex_escape(plain) if plain else "?")
    return "".join(out)


_FALLBACK = (
    "% Without \\usepackage{booktabs} the rules fall back to \\hline.\n"
    "\\providecommand{\\toprule}{\\hline}\\providecommand{\\midrule}{\\hline}"
    "\\providecommand{\\bottomrule}{\\hline}\n"
)


def table_latex(table: Table, title: str = "") -> str:
    """A booktabs `tabular` (to `\\input` inside a table float); intervals in brackets
    after each value, in a smaller size; notes as a comment."""
    cols = "l" + "".join("l" if _is_text(table, i) else "r" for i in range(len(table.columns)))
    lines = [f"% {tex_escape(title)}" if title else "% reidbench table", _FALLBACK.rstrip("\n")]
    lines.append(f"\\begin{{tabular}}{{{cols}}}")
    lines.append("\\toprule")
    head = [tex_escape(table.head_label)] + [tex_escape(label) for label, _ in table.columns]
    lines.append(" & ".join(head) + r" \\")
    lines.append("\\midrule")
    for r in table.rows:
        cells = [tex_escape(r.head)]
        for c in r.cells:
            text = "--" if c.text == fmt.DASH else tex_escape(c.text)
            if c.ci:
                text += f" {{\\scriptsize {tex_escape(c.ci)}}}"
            cells.append(text)
        cells += [""] * (len(table.columns) + 1 - len(cells))
        lines.append(" & ".join(cells) + r" \\")
    lines.append("\\bottomrule")
    lines.append("\\end{tabular}")
    for note in table.notes:
        lines.append(f"% note: {tex_escape(note)}")
    return "\n".join(lines) + "\n"


def _is_text(table: Table, i: int) -> bool:
    aligns = {r.cells[i].align for r in table.rows if i < len(r.cells)}
    return bool(aligns) and aligns <= {"text", "mono"}


# --- figures ---------------------------------------------------------------------------


def figure_files(fig: FigureData) -> dict[str, bytes]:
    """{"svg": ..., "pdf": ...} for one report figure, fonts embedded in the PDF."""
    import matplotlib

    from reidbench.report import plots

    rc: Any = {**plots._RC, "pdf.fonttype": 42}  # matplotlib types keys as literals
    out = {}
    with matplotlib.rc_context(rc):
        for ext, meta in (
            ("svg", {"Date": None}),
            ("pdf", {"CreationDate": None, "ModDate": None, "Creator": "reidbench"}),
        ):
            buf = io.BytesIO()
            fig.figure.savefig(buf, format=ext, metadata=meta)
            out[ext] = buf.getvalue()
    return out


# --- writing ---------------------------------------------------------------------------


def _title(path: list[str]) -> str:
    return " / ".join(p.replace("_", " ") for p in path)


def export_files(context: Mapping[str, Any], kinds: Iterable[str]) -> dict[str, bytes]:
    """{file name: contents} of the exports of one report context (nothing written)."""
    tables, figures = collect(context)
    files: dict[str, bytes] = {}
    kinds = set(kinds)
    for t in tables:
        if "latex" in kinds:
            files[f"table-{t.name}.tex"] = table_latex(t.item, _title(t.path)).encode()
        if "csv" in kinds:
            files[f"table-{t.name}.csv"] = table_csv(t.item).encode()
    if "figures" in kinds:
        for f in figures:
            for ext, data in figure_files(f.item).items():
                files[f"figure-{f.name}.{ext}"] = data
    return files


def write_exports(
    run_dir: str | os.PathLike[str],
    metrics: Mapping[str, Any],
    kinds: Iterable[str],
    *,
    generated: str | None = None,
) -> list[Path]:
    """Write the exports of a run's report into run_dir/export/; return the paths.

    Files of the same names are replaced; other files already in export/ are left alone.
    """
    from reidbench.report.context import build_context
    from reidbench.report.write import _manifest, _now

    run_dir = Path(run_dir)
    context = build_context(metrics, _manifest(run_dir), generated=generated or _now())
    files = export_files(context, kinds)
    target = run_dir / EXPORT_DIR
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=run_dir))
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        written = []
        for name in files:
            os.replace(staging / name, target / name)
            written.append(target / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written
