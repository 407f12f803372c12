"""Failure-gallery thumbnails: dataset crops downscaled to small JPEG data URIs.

The report must open anywhere without the dataset, so each crop it shows is
embedded. A missing or unreadable image is not an error: the gallery shows a
placeholder with the path instead.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

# Market-1501 crops are 64 x 128; twice that keeps them sharp on high-DPI screens.
MAX_SIZE = (96, 192)
JPEG_QUALITY = 82


def thumbnail_data_uri(path: Path, max_size: tuple[int, int] = MAX_SIZE) -> str | None:
    """A JPEG data URI of the image at `path`, fitted into `max_size`; None if unreadable."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail(max_size, Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class Thumbnails:
    """Thumbnails of images under one dataset root, each made once per report."""

    root: Path | None
    max_size: tuple[int, int] = MAX_SIZE
    _done: dict[str, str | None] = field(default_factory=dict)

    def get(self, relpath: str | None) -> str | None:
        """The data URI for a path relative to the root; None when it cannot be shown.

        Paths that resolve outside the root are refused: a run directory is data,
        and must not make the report embed arbitrary files.
        """
        if not relpath or self.root is None:
            return None
        if relpath not in self._done:
            self._done[relpath] = self._make(relpath)
        return self._done[relpath]

    def _make(self, relpath: str) -> str | None:
        assert self.root is not None  # get() returns early without a root
        root = self.root.resolve()
        target = (root / relpath).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return None
        return thumbnail_data_uri(target, self.max_size)
