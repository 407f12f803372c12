"""The report in a real browser: headless Chromium shows it with no console errors.

Chromium is driven over the DevTools protocol (see tests/browser.py), which
reports console errors, exceptions and Content-Security-Policy violations as events
and can ask whether each embedded image decoded. Skipped, with the reason shown,
where no Chromium is installed; `.ci/run` installs Debian's `chromium` first.
"""

from __future__ import annotations

import pytest

from reidbench.report import write_report
from tests.browser import find_chromium, inspect_page
from tests.report_runs import IMG, SCRIPT, make_run

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="chromium not installed: apt-get install chromium"
)

SECTIONS = [
    "summary",
    "protocol",
    "curves",
    "distributions",
    "confusion",
    "thresholds",
    "comparisons",
    "failures",
    "disagreement",  # issue #15 views: an LVLM and a ReID model
    "cameras",
    "consistency",
    "costs",
    "retrieval",
]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    run, metrics = make_run(tmp_path_factory.mktemp("browser"), missing_images=True)
    write_report(run, metrics)
    return inspect_page(run / "report.html", width=1280, height=900, screenshot="viewport")


@pytest.mark.slow
def test_renders_without_console_errors(page):
    assert page.errors == []
    assert page.scripts == 0
    assert page.title.startswith("reidbench report: report-test")


@pytest.mark.slow
def test_every_image_decodes(page):
    assert page.images, "figures and thumbnails are images"
    assert page.broken_images == []
    assert all(i["src"].startswith("data:image/") for i in page.images)
    figures = [i for i in page.images if i["src"].startswith("data:image/svg")]
    assert len(figures) >= 4  # ROC+PR, calibration, histograms, CMC


def test_shows_every_section_and_the_summary(page):
    assert page.section_ids == SECTIONS
    text = page.text
    assert "SYNTHETIC DATA." in text
    assert "gpt-4o" in text and "handcrafted" in text
    assert "Coverage" in text and "TAR@FAR 1%" in text
    assert page.height > 3000


def test_hostile_model_text_is_shown_as_text(page):
    # Rendered text contains the markup literally: it was never parsed as HTML.
    assert SCRIPT in page.text and IMG in page.text


def test_screenshot_is_a_png_of_the_viewport(page):
    from io import BytesIO

    from PIL import Image

    assert page.screenshot is not None
    im = Image.open(BytesIO(page.screenshot))
    assert im.format == "PNG" and im.size == (1280, 900)
    assert len(im.convert("L").getcolors(256) or []) > 20, "the page is not blank"


@pytest.mark.slow
def test_the_check_catches_errors(tmp_path):
    """A page that breaks the rules is reported: the absence of errors above means something."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!doctype html><html><head><meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'; img-src data:\"></head><body>"
        "<script>console.error('x')</script><img src='https://example.invalid/a.png'>"
        "<img src='data:image/png;base64,AAAA'></body></html>"
    )
    report = inspect_page(bad)
    assert any("Content Security Policy" in e and "script" in e for e in report.errors)
    assert any("example.invalid" in e for e in report.errors)
    assert report.scripts == 1 and len(report.broken_images) == 2
