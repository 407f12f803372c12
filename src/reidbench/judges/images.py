"""Turn two crops into the image bytes a judge is sent: upscale, optional composite, encode.

ReID crops are tiny (Market-1501: 128x64), below what LVLM image encoders
resolve well, so crops shorter than `size` are upscaled (Lanczos) to that
height; larger crops are sent at their own size. The bytes produced here are
exactly the bytes sent, and their hash enters the cache key.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import PIL
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from reidbench.errors import UserError

MIMES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
COMPOSITE_GAP = 16  # px of white between the two crops
LABEL_BAND = 24  # px band above the crops holding the labels "A" and "B"


@dataclass(frozen=True)
class ImageSpec:
    """How crops are prepared; part of the cache key (with the Pillow version)."""

    mode: str = "pair"  # "pair": two images in one message; "composite": one side-by-side image
    size: int = 256
    fmt: str = "jpeg"
    quality: int = 90

    def key(self) -> dict[str, object]:
        return {
            "image_mode": self.mode,
            "image_size": self.size,
            "image_format": self.fmt,
            "jpeg_quality": self.quality if self.fmt in ("jpeg", "webp") else None,
            "pillow": PIL.__version__,
        }


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    mime: str
    width: int
    height: int
    sha256: str = field(default="", compare=False)

    @classmethod
    def of(cls, data: bytes, mime: str, width: int, height: int) -> EncodedImage:
        return cls(data, mime, width, height, hashlib.sha256(data).hexdigest())


def load_crop(path: Path) -> Image.Image:
    """Decode a crop as RGB; a missing or broken file is the user's to fix."""
    from reidbench.imagelimits import check_header, max_pixels, too_large

    max_pixels()  # Pillow's own bomb check follows our one limit
    try:
        with Image.open(path) as img:
            check_header(img, path)
            img.load()
            return img.convert("RGB")
    except FileNotFoundError as exc:
        raise UserError(f"{path}: image not found; check the dataset root and pairs file") from exc
    except Image.DecompressionBombError as exc:
        raise too_large(path) from exc
    except UnidentifiedImageError as exc:
        size = path.stat().st_size if path.is_file() else None
        what = "empty file (0 bytes)" if size == 0 else "unknown or corrupt format"
        raise UserError(f"{path}: not a readable image ({what}); replace or drop it") from exc
    except OSError as exc:
        raise UserError(f"{path}: not a readable image ({exc}); replace or drop it") from exc


def upscale(img: Image.Image, height: int) -> Image.Image:
    """Scale up (never down) so the crop is `height` pixels tall, keeping its aspect ratio."""
    if img.height >= height:
        return img
    width = max(1, round(img.width * height / img.height))
    return img.resize((width, height), Image.Resampling.LANCZOS)


def encode(img: Image.Image, fmt: str, quality: int) -> EncodedImage:
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, format="JPEG", quality=quality)
    elif fmt == "png":
        img.save(buf, format="PNG", optimize=False)
    elif fmt == "webp":
        img.save(buf, format="WEBP", quality=quality, method=4)
    else:
        raise UserError(f"unknown image_format {fmt!r}; use jpeg, png or webp")
    return EncodedImage.of(buf.getvalue(), MIMES[fmt], img.width, img.height)


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def composite(a: Image.Image, b: Image.Image) -> Image.Image:
    """A left, B right, same height, a white gap between, labels "A"/"B" in a band on top."""
    return composite_row([a, b], ["A", "B"])


def composite_row(images: list[Image.Image], labels: list[str]) -> Image.Image:
    """Crops left to right at one height, white gaps between, each label centred above its
    crop (a pair: A, B; a multiple-choice item: the query Q, then candidates A, B, ...)."""
    if len(images) != len(labels) or not images:
        raise ValueError("composite_row needs one label per image")
    height = max(img.height for img in images)
    scaled = [
        img
        if img.height == height
        else img.resize(
            (max(1, round(img.width * height / img.height)), height), Image.Resampling.LANCZOS
        )
        for img in images
    ]
    width = sum(img.width for img in scaled) + COMPOSITE_GAP * (len(scaled) - 1)
    canvas = Image.new("RGB", (width, height + LABEL_BAND), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(LABEL_BAND - 6)
    x0 = 0
    for img, label in zip(scaled, labels, strict=True):
        canvas.paste(img, (x0, LABEL_BAND))
        draw.text((x0 + img.width / 2, LABEL_BAND / 2), label, fill="black", font=font, anchor="mm")
        x0 += img.width + COMPOSITE_GAP
    return canvas


class EncodeMemo:
    """Encoded crops of one run, so a crop met again (other pairs, both orders, repeats)
    is not decoded, resized and encoded again. Bounded; safe to share between threads."""

    def __init__(self, max_items: int = 4096) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple[object, ...], EncodedImage] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> EncodedImage | None:
        with self._lock:
            img = self._items.get(key)
            if img is not None:
                self._items.move_to_end(key)
            return img

    def put(self, key: tuple[object, ...], img: EncodedImage) -> None:
        with self._lock:
            self._items[key] = img
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)


def prepare(
    path_a: Path, path_b: Path, spec: ImageSpec, memo: EncodeMemo | None = None
) -> list[EncodedImage]:
    """The images sent for (a, b) in that order: two images, or one composite."""
    if spec.mode == "composite":
        key: tuple[object, ...] = ("composite", str(path_a), str(path_b), spec)
        img = memo.get(key) if memo else None
        if img is None:
            a = upscale(load_crop(path_a), spec.size)
            b = upscale(load_crop(path_b), spec.size)
            img = encode(composite(a, b), spec.fmt, spec.quality)
            if memo:
                memo.put(key, img)
        return [img]
    out = []
    for path in (path_a, path_b):
        key = ("single", str(path), spec)
        img = memo.get(key) if memo else None
        if img is None:
            img = encode(upscale(load_crop(path), spec.size), spec.fmt, spec.quality)
            if memo:
                memo.put(key, img)
        out.append(img)
    return out


def prepare_many(
    paths: list[Path],
    spec: ImageSpec,
    memo: EncodeMemo | None = None,
    labels: tuple[str, ...] = (),
) -> list[EncodedImage]:
    """The images sent for several crops (a multiple-choice item: query, then candidates):
    one image per crop in mode "pair", or one labelled composite (`labels`, one per crop)."""
    if spec.mode == "composite":
        key: tuple[object, ...] = ("composite-row", tuple(map(str, paths)), labels, spec)
        img = memo.get(key) if memo else None
        if img is None:
            crops = [upscale(load_crop(p), spec.size) for p in paths]
            img = encode(composite_row(crops, list(labels)), spec.fmt, spec.quality)
            if memo:
                memo.put(key, img)
        return [img]
    out = []
    for path in paths:
        single: tuple[object, ...] = ("single", str(path), spec)
        img = memo.get(single) if memo else None
        if img is None:
            img = encode(upscale(load_crop(path), spec.size), spec.fmt, spec.quality)
            if memo:
                memo.put(single, img)
        out.append(img)
    return out
