"""The report's layout in a real browser at desktop (1400 px) and phone (390 px) widths.

Measured through the DevTools protocol (the page itself stays script-free): the page
never scrolls sideways, no table, figure or card reaches past the viewport unless it
sits in a horizontal scroll box, and the smallest text of every figure renders at
10 CSS px or more (each SVG records its smallest text size; report/plots.py).
Run on the demo's report (the demo's config: embedders, a fused system, retrieval;
conftest.demo_run) and on a report with an LVLM (tests/report_runs.py). Skipped where
Chromium is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reidbench.report import write_report
from tests.browser import find_chromium, inspect_page
from tests.report_runs import make_run

pytestmark = [
    pytest.mark.skipif(
        find_chromium() is None, reason="chromium not installed: apt-get install chromium"
    ),
    pytest.mark.timeout(900),  # the first test also makes the demo run (shared fixture)
]

MIN_FIGURE_TEXT_PX = 10.0

# Everything a reader sees as a block; each must fit the viewport, or its scroll box must.
PROBE = r"""((print) => {
  const de = document.documentElement;
  const vw = de.clientWidth;
  const where = el => { const s = el.closest("section"); return s ? s.id : "top"; };
  const hidden = el => el.closest("details:not([open])") !== null;
  const out = {scrollWidth: de.scrollWidth, clientWidth: vw, overflow: [], boxes: [], figures: []};
  const blocks = "table, figure, img, pre, dl, .card, .example, .confusion, h1, h2, h3, p, li,"
    + " .howto";
  for (const el of document.querySelectorAll(blocks)) {
    if (hidden(el)) continue;
    const box = print ? el : (el.closest(".scroll") || el);
    const r = box.getBoundingClientRect();
    if (r.width === 0) continue;
    if (r.left < -0.5 || r.right > vw + 0.5) {
      out.overflow.push({section: where(el), tag: el.tagName, cls: String(el.className),
        left: r.left, right: r.right, text: (el.innerText || el.alt || "").slice(0, 60)});
    }
  }
  for (const s of document.querySelectorAll(".scroll")) {
    if (hidden(s)) continue;
    const head = s.querySelector("thead th:nth-child(2)");
    out.boxes.push({section: where(s), scroll: s.scrollWidth, client: s.clientWidth,
      column: head ? head.innerText : ""});
  }
  for (const img of document.images) {
    const src = img.getAttribute("src");
    if (!src.startsWith("data:image/svg+xml;base64,") || hidden(img)) continue;
    const svg = atob(src.slice(26));
    const width = /<svg[^>]*\swidth="([\d.]+)pt"/.exec(svg);
    const small = /smallest text ([\d.]+) pt/.exec(svg);
    const r = img.getBoundingClientRect();
    out.figures.push({alt: img.alt, section: where(img), rendered: r.width,
      width_pt: width ? parseFloat(width[1]) : null, min_pt: small ? parseFloat(small[1]) : null});
  }
  return out;
})(PRINT)"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory, demo_run) -> dict[str, Path]:
    """The demo's report (no LVLM: offline) and the hand-built report with an LVLM."""
    run, metrics = make_run(tmp_path_factory.mktemp("layout"), missing_images=True)
    write_report(run, metrics)
    return {"demo": demo_run / "report.html", "lvlm": run / "report.html"}


def _measure(path: Path, width: int, media: str | None = None) -> dict:
    probe = PROBE.replace("PRINT", "true" if media == "print" else "false")
    page = inspect_page(path, width=width, height=900, probe=probe, media=media)
    assert page.errors == []
    return page.probed


@pytest.mark.slow
@pytest.mark.parametrize("which", ["demo", "lvlm"])
@pytest.mark.parametrize("width", [1400, 390])
def test_nothing_wider_than_the_viewport(reports, which, width):
    m = _measure(reports[which], width)
    assert m["clientWidth"] == width
    assert m["scrollWidth"] <= m["clientWidth"], "the page scrolls sideways"
    assert m["overflow"] == [], "blocks past the viewport outside a scroll box"
    assert m["boxes"], "tables sit in scroll boxes"
    if width == 1400:
        # On a desktop every table fits its box: nothing is cut or hidden behind a scroll
        # (the Retrieval table's last column was cut here once).
        assert [b for b in m["boxes"] if b["scroll"] > b["client"] + 1] == []


@pytest.mark.slow
@pytest.mark.parametrize("which", ["demo", "lvlm"])
@pytest.mark.parametrize("width", [1400, 390])
def test_figure_text_is_legible(reports, which, width):
    m = _measure(reports[which], width)
    figures = m["figures"]
    assert len(figures) >= 5  # ROC, PR, calibration, histograms, CMC, ...
    for f in figures:
        assert f["width_pt"] and f["min_pt"], f"{f['alt']}: no size recorded in the SVG"
        px = f["min_pt"] * f["rendered"] / f["width_pt"]
        assert px >= MIN_FIGURE_TEXT_PX, f"{f['alt']} ({f['section']}): text {px:.1f} px"
        assert f["rendered"] <= width


@pytest.mark.slow
def test_a_phone_scrolls_wide_tables_inside_their_box(reports):
    """At 390 px the wide tables overflow their box (which scrolls), not the page: the
    check above would catch a table that overflowed anywhere else."""
    m = _measure(reports["lvlm"], 390)
    wide = [b for b in m["boxes"] if b["scroll"] > b["client"] + 1]
    assert any(b["section"] == "summary" for b in wide)
    assert m["scrollWidth"] <= 390


@pytest.mark.slow
@pytest.mark.parametrize("which", ["demo", "lvlm"])
def test_print_fits_the_page(reports, which):
    """Print stylesheet: nothing scrolls on paper, so every table and figure must fit the
    printable width of A4 (210 mm - 2 x 14 mm margins = 688 CSS px; Letter is wider)."""
    m = _measure(reports[which], 688, media="print")
    assert m["scrollWidth"] <= m["clientWidth"]
    assert m["overflow"] == [], "tables or figures wider than the paper"


@pytest.mark.slow
def test_the_check_catches_overflow(tmp_path):
    """A page with a fixed-width table and a tiny-text figure is reported."""
    import base64

    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="720pt" height="100pt" '
        'viewBox="0 0 720 100"><metadata>smallest text 8 pt</metadata>'
        '<rect width="720" height="100" fill="#ccc"/></svg>'
    )
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!doctype html><html><head><meta name='viewport' content='width=device-width'>"
        "</head><body><section id='s'><table style='width:900px'><tr><td>x</td></tr></table>"
        f"<figure><img src='{uri}' style='width:100%' alt='tiny'></figure></section>"
        "</body></html>"
    )
    m = _measure(bad, 390)
    assert m["scrollWidth"] > m["clientWidth"]
    assert any(o["tag"] == "TABLE" for o in m["overflow"])
    (f,) = m["figures"]
    assert f["min_pt"] * f["rendered"] / f["width_pt"] < MIN_FIGURE_TEXT_PX
