"""One limit on image size for every command (`REIDBENCH_MAX_IMAGE_PIXELS`).

Pillow guards against decompression bombs with `Image.MAX_IMAGE_PIXELS` (a warning above
it, an error above twice it) and messages that do not name the file. Every place that
decodes a user's image calls `check_header` right after `Image.open` (which reads the
header only), so an oversized image is one user error naming the file and the knob,
whichever command meets it. Person crops are a few hundred pixels a side; the default
is Pillow's own threshold.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from reidbench.errors import UserError

ENV = "REIDBENCH_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's default MAX_IMAGE_PIXELS


def max_pixels() -> int:
    """The limit: $REIDBENCH_MAX_IMAGE_PIXELS, else the default. Pillow's own limit is raised
    to it when higher, so Pillow's bomb check never fires before ours."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        value = DEFAULT_MAX_PIXELS
    else:
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            value = 0
        if value <= 0:
            raise UserError(f"{ENV}={raw!r}: give a positive whole number of pixels")
    # Pillow's own guard is only ever raised (never lowered: a small test limit must not
    # outlive its command in a long-lived process and break decodes that skip our check).
    Image.MAX_IMAGE_PIXELS = max(value, DEFAULT_MAX_PIXELS, Image.MAX_IMAGE_PIXELS or 0)
    return value


def too_large(where: str | Path, pixels: int | None = None) -> UserError:
    size = f" ({pixels:,} pixels)" if pixels else ""
    return UserError(
        f"{where}: image too large{size}; the limit is {max_pixels():,} pixels; "
        f"remove the image or raise {ENV}"
    )


def check_header(img: Image.Image, where: str | Path) -> None:
    """Refuse an opened (not yet decoded) image above the limit."""
    pixels = int(img.width) * int(img.height)
    if pixels > max_pixels():
        raise too_large(where, pixels)
