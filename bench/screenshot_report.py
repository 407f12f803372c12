"""Render a run's report.html in headless Chromium and save a PNG (the README screenshot).

    .venv/bin/reidbench demo --out runs/demo --no-lvlm
    .venv/bin/python -m bench.screenshot_report runs/demo --out docs/report-screenshot.png

Fails (exit 1) if the page logs any console error or an image does not decode, so a
screenshot is only ever taken of a report that renders cleanly.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image

from reidbench.files import atomic_path
from tests.browser import find_chromium, inspect_page

MAX_BYTES = 1_500_000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path, help="a run directory with report.html")
    ap.add_argument("--out", type=Path, default=Path("docs/report-screenshot.png"))
    ap.add_argument("--width", type=int, default=1400, help="viewport width, CSS pixels")
    ap.add_argument("--height", type=int, default=1600, help="height of the top part shown")
    ap.add_argument("--full", action="store_true", help="the whole page, not the top part")
    args = ap.parse_args(argv)

    page = args.run_dir / "report.html"
    if not page.is_file():
        print(f"error: {page} not found; run `reidbench demo --out {args.run_dir}` first")
        return 2
    if find_chromium() is None:
        print("error: chromium not installed: apt-get install chromium")
        return 2
    report = inspect_page(
        page, width=args.width, height=args.height, screenshot="full" if args.full else "viewport"
    )
    if report.errors or report.broken_images:
        print("error: the report does not render cleanly:", *report.errors, sep="\n  ")
        print(*report.broken_images, sep="\n  ")
        return 1
    png = report.screenshot or b""
    if len(png) > MAX_BYTES:  # a palette keeps UI screenshots sharp at a fraction of the size
        im = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, dither=0)
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
        png = buf.getvalue()
    with atomic_path(args.out) as tmp:
        tmp.write_bytes(png)
    w, h = Image.open(args.out).size
    print(
        f"{args.out}: {w} x {h} px, {len(png) / 1e3:.0f} kB; page {report.height} px tall, "
        f"{len(report.images)} images decoded, no console errors"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
