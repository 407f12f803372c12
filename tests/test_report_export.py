"""Publication exports: `reidbench report DIR --export latex,csv,figures`.

Every table and figure the report builds is exported (found by instrumenting the
constructors, not by the exporter's own walk), under stable names; CSV cells equal the
table's numbers and metrics.json; LaTeX has booktabs rules, escapes specials and
compiles with pdflatex (skipped with a reason where it is absent); SVGs parse and
PDFs embed their fonts.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reidbench.errors import UserError
from reidbench.report import export, plots, write_report
from reidbench.report.context import build_context
from reidbench.report.model import Cell, Row, Table
from tests.report_runs import make_run

HOSTILE = "fused(a_b+c&d)$%#{x}~^\\ 50% — ≥ †"


@pytest.fixture(scope="module")
def lvlm_run(tmp_path_factory):
    run, metrics = make_run(tmp_path_factory.mktemp("export"), missing_images=True)
    write_report(run, metrics)
    return run, metrics


def test_kinds_are_checked():
    assert export.parse_kinds("latex,csv,figures") == ["latex", "csv", "figures"]
    assert export.parse_kinds(" CSV , csv") == ["csv"]
    assert export.parse_kinds("all") == list(export.KINDS)
    for bad in ("pdf", "latex,png", "", ","):
        with pytest.raises(UserError, match="unknown export kind"):
            export.parse_kinds(bad)


@pytest.mark.slow
def test_unknown_kind_is_one_line_and_exit_2(run_cli, lvlm_run):
    run, _ = lvlm_run
    result = run_cli("report", run, "--export", "latex,docx")
    assert result.code == 2
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "'docx'" in lines[0] and "latex, csv, figures" in lines[0]
    assert "Traceback" not in result.err
    assert not (run / "export").exists()


@pytest.mark.slow
def test_every_table_and_figure_is_exported(lvlm_run, monkeypatch):
    """Instrument Table and FigureData: whatever the report makes, the export finds."""
    _, metrics = lvlm_run
    made_tables: list[Table] = []
    made_figures: list[plots.FigureData] = []
    table_init, figure_new = Table.__init__, plots.FigureData.__new__

    def record_table(self, *a, **k):
        table_init(self, *a, **k)
        made_tables.append(self)

    def record_figure(cls, *a, **k):
        obj = figure_new(cls, *a, **k)
        made_figures.append(obj)
        return obj

    monkeypatch.setattr(Table, "__init__", record_table)
    monkeypatch.setattr(plots.FigureData, "__new__", record_figure)
    context = build_context(metrics, {}, generated="2026-01-01 00:00 UTC")
    tables, figures = export.collect(context)
    assert {id(t.item) for t in tables} == {id(t) for t in made_tables if t.rows}
    assert {id(f.item) for f in figures} == {id(f) for f in made_figures}
    names = [t.name for t in tables] + [f.name for f in figures]
    files = [f"table-{t.name}" for t in tables] + [f"figure-{f.name}" for f in figures]
    assert len(set(files)) == len(files)  # a table and a figure may share a name
    assert all(n == export.slug(n, 200) or "-" in n for n in names)
    # stable: a second build gives the same names in the same order
    again = export.collect(build_context(metrics, {}, generated="later"))
    assert [t.name for t in again[0]] + [f.name for f in again[1]] == names


@pytest.mark.slow
def test_cli_writes_the_files_under_stable_names(run_cli, lvlm_run):
    run, _ = lvlm_run
    result = run_cli("report", run, "--export", "latex,csv,figures")
    assert result.code == 0, result.err
    files = {p.name for p in (run / "export").iterdir()}
    for name in (
        "table-summary.tex",
        "table-summary.csv",
        "table-comparisons.tex",
        "table-comparisons.csv",
        "table-retrieval.csv",
        "figure-roc.svg",
        "figure-roc.pdf",
        "figure-pr.pdf",
        "figure-calibration-plot.pdf",
        "figure-cmc.svg",
        "figure-histograms-gpt-4o.pdf",
        "figure-histograms-handcrafted.svg",
    ):
        assert name in files, sorted(files)
    assert not [p for p in run.iterdir() if p.name.startswith(".export-")]
    # only the kinds asked for
    shutil.rmtree(run / "export")
    assert run_cli("report", run, "--export", "csv").code == 0
    assert {p.suffix for p in (run / "export").iterdir()} == {".csv"}


@pytest.mark.slow
def test_csv_equals_the_table_and_metrics(lvlm_run):
    _, metrics = lvlm_run
    context = build_context(metrics, {}, generated="x")
    tables, _ = export.collect(context)
    summary = next(t.item for t in tables if t.name == "summary")
    rows = list(csv.reader(io.StringIO(export.table_csv(summary))))
    header = rows[0]
    assert header[0] == "System"
    for label in ("AUC", "AUC 95% CI low", "AUC 95% CI high", "Coverage", "EER"):
        assert label in header
    for row, trow in zip(rows[1:], summary.rows, strict=True):
        assert row[0] == trow.head
        b = metrics["systems"][trow.head]
        auc = row[header.index("AUC")]
        assert float(auc) == pytest.approx(b["auc"], abs=5e-4)
        ci = b["ci"]["intervals"]["auc"]
        assert float(row[header.index("AUC 95% CI low")]) == pytest.approx(ci["low"], abs=5e-4)
        assert float(row[header.index("AUC 95% CI high")]) == pytest.approx(ci["high"], abs=5e-4)
        # every value column equals the page's text for that cell
        for (label, _), cell in zip(summary.columns, trow.cells, strict=True):
            want = "" if cell.text == "—" else cell.text
            assert row[header.index(label)] == want


def test_latex_has_booktabs_rules_and_escapes():
    t = Table(
        [("AUC", ""), ("Note", "")],
        [Row(HOSTILE, [Cell("0.912", ci="[0.850, 0.950]"), Cell("a & b", align="text")])],
        head_label="System_name",
    )
    tex = export.table_latex(t, "test")
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert tex.count(rule) >= 2  # the rule and its \providecommand fallback
    assert "\\begin{tabular}{lrl}" in tex
    assert (
        "fused(a\\_b+c\\&d)\\$\\%\\#\\{x\\}\\textasciitilde{}\\textasciicircum{}"
        "\\textbackslash{} 50\\% --- $\\geq$ \\textdagger{}"
    ) in tex
    assert "System\\_name" in tex and "a \\& b" in tex
    assert "0.912 {\\scriptsize [0.850, 0.950]}" in tex
    assert all(ord(ch) < 128 for ch in tex)


def _pdflatex(tmp_path: Path, files: list[Path], booktabs: bool) -> subprocess.CompletedProcess:
    body = "\n".join(
        f"\\noindent\\resizebox{{\\linewidth}}{{!}}{{\\input{{{f.as_posix()}}}}}\\par\\medskip"
        for f in files
    )
    doc = tmp_path / f"doc-{int(booktabs)}.tex"
    doc.write_text(
        "\\documentclass{article}\n\\usepackage{graphicx}\n"
        + ("\\usepackage{booktabs}\n" if booktabs else "")
        + f"\\begin{{document}}\n{body}\n\\end{{document}}\n"
    )
    return subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(
    shutil.which("pdflatex") is None,
    reason="pdflatex not installed: apt-get install --no-install-recommends texlive-latex-base",
)
@pytest.mark.slow
def test_exported_tables_compile_with_pdflatex(tmp_path, lvlm_run):
    run, metrics = lvlm_run
    export.write_exports(run, metrics, ["latex"])
    hostile = tmp_path / "table-hostile.tex"
    hostile.write_text(
        export.table_latex(Table([("AUC", "")], [Row(HOSTILE, [Cell("0.5", ci="[0.4, 0.6]")])]))
    )
    files = [*sorted((run / "export").glob("table-*.tex")), hostile]
    assert len(files) > 5
    have_booktabs = (
        subprocess.run(["kpsewhich", "booktabs.sty"], capture_output=True).returncode == 0
        if shutil.which("kpsewhich")
        else False
    )
    for booktabs in (True, False) if have_booktabs else (False,):
        done = _pdflatex(tmp_path, files, booktabs)
        assert done.returncode == 0, done.stdout[-2000:]
        assert (tmp_path / f"doc-{int(booktabs)}.pdf").read_bytes().startswith(b"%PDF-")


@pytest.mark.slow
def test_figures_parse_and_embed_fonts(lvlm_run, tmp_path):
    run, metrics = lvlm_run
    written = export.write_exports(run, metrics, ["figures"])
    svgs = [p for p in written if p.suffix == ".svg"]
    pdfs = [p for p in written if p.suffix == ".pdf"]
    assert len(svgs) == len(pdfs) >= 5
    assert {p.stem for p in svgs} == {p.stem for p in pdfs}
    for p in svgs:
        root = ET.parse(p).getroot()
        assert root.tag.endswith("svg") and root.get("viewBox")
        assert "<text" not in p.read_text()  # text as paths: no font needed to view
    for p in pdfs:
        data = p.read_bytes()
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
        assert b"/FontFile2" in data  # TrueType font program embedded (pdf.fonttype 42)
        assert b"/Subtype /Type3" not in data
    # deterministic bytes: the same figure exports identically
    again = export.export_files(build_context(metrics, {}, generated="x"), ["figures"])
    assert again["figure-roc.pdf"] == (run / "export" / "figure-roc.pdf").read_bytes()


@pytest.mark.slow
def test_a_failed_export_leaves_nothing(lvlm_run, monkeypatch, tmp_path):
    run, metrics = lvlm_run
    target = tmp_path / "run"
    shutil.copytree(run, target)
    shutil.rmtree(target / "export", ignore_errors=True)

    def broken(fig):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "figure_files", broken)
    with pytest.raises(RuntimeError):
        export.write_exports(target, metrics, ["latex", "csv", "figures"])
    assert not (target / "export").exists()
    assert not [p for p in target.iterdir() if p.name.startswith(".export-")]


@pytest.mark.slow
@pytest.mark.timeout(900)  # may make the demo run (shared fixture)
def test_the_demo_exports_under_stable_names(demo_run, run_cli):
    result = run_cli("report", demo_run, "--export", "all")
    assert result.code == 0, result.err
    files = {p.name for p in (demo_run / "export").iterdir()}
    for name in (
        "table-summary.tex",
        "table-summary.csv",
        "table-comparisons.tex",
        "table-coverage-comparisons.tex",
        "table-retrieval.csv",
        "figure-roc.pdf",
        "figure-pr.svg",
        "figure-cmc.pdf",
        "figure-risk-coverage.pdf",
    ):
        assert name in files, sorted(files)
    assert any(n.startswith("table-fusion-") for n in files)
