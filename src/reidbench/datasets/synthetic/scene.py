"""Backgrounds of the synthetic set: one campus, seen by every camera from its own spot.

All cameras look at the same materials (walls, hedges, shop windows, paving) in
different arrangements, as the cameras of Market-1501 all look at one campus.
Material colours belong to the campus, not to a camera, so the colours of a
background say little about which camera took the crop; the arrangement, the
horizon and the camera's light and blur still differ. Small clutter (goods in
windows, signs, bikes, far-away people) spreads a background over many colours,
so no single background colour outweighs the person in a colour histogram.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from reidbench.datasets.synthetic.identity import RGB

BACKDROPS = ("brick", "foliage", "glass", "wall", "shops")
GROUNDS = ("tiles", "asphalt", "grass", "floor")
VARIANTS = 3  # colourings of each material on the campus
SATURATION = 0.7  # how far scene colours stray from grey (1 = as drawn)
HORIZON = (0.7, 0.9)  # where the ground starts, fraction of the scene height
CLUTTER_DENSITY = 0.6  # share of the backdrop covered by small things
CLUTTER_SATURATION = 0.6
GRAIN = 16.0  # s.d. of per-pixel texture (output pixels)
BLUR = (0.3, 0.6)  # background is slightly out of focus (output pixels)


@dataclass(frozen=True, slots=True)
class Campus:
    """Base colours of every material variant: (kind, variant) -> list of RGB tones."""

    tones: dict[tuple[str, int], list[RGB]]


def _jitter(rng: np.random.Generator, base: RGB, spread: int) -> RGB:
    c = np.clip(np.array(base) + rng.integers(-spread, spread + 1, 3), 0, 255)
    return int(c[0]), int(c[1]), int(c[2])


_BASES: dict[str, tuple[RGB, int, int]] = {  # kind: (base colour, spread, tones per variant)
    "brick": ((150, 80, 60), 40, 2),  # bricks, mortar
    "foliage": ((60, 100, 50), 30, 1),
    "glass": ((110, 130, 150), 40, 2),  # glass, frames
    "wall": ((180, 172, 160), 60, 1),
    "shops": ((128, 128, 128), 110, 4),  # shop fronts side by side
    "tiles": ((165, 155, 140), 60, 3),
    "asphalt": ((90, 90, 94), 20, 2),  # asphalt, road marking
    "grass": ((80, 120, 60), 30, 1),
    "floor": ((190, 180, 165), 50, 2),
}


def make_campus(rng: np.random.Generator) -> Campus:
    tones: dict[tuple[str, int], list[RGB]] = {}
    for kind, (base, spread, n) in _BASES.items():
        for v in range(VARIANTS):
            tones[(kind, v)] = [_jitter(rng, base, spread) for _ in range(n)]
    tones.update({(k, v): [(200, 185, 175), tones[(k, v)][1]] for k, v in tones if k == "brick"})
    tones.update({(k, v): [tones[(k, v)][0], (60, 60, 64)] for k, v in tones if k == "glass"})
    tones.update({(k, v): [tones[(k, v)][0], (215, 205, 150)] for k, v in tones if k == "asphalt"})
    return Campus(tones)


def _smooth(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: lighting patches, foliage, stains."""
    small = rng.random((max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    img = Image.fromarray(small, mode="F").resize((w, h), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(img), 0.0, 1.0)


def _material(rng: np.random.Generator, kind: str, tones: list[RGB], h: int, w: int) -> np.ndarray:
    """One piece of backdrop or ground, (h, w, 3) float32, in output pixels."""
    yy, xx = np.mgrid[0:h, 0:w]
    t = [np.array(c, np.float32) for c in tones]
    if kind == "brick":
        bh, bw = int(rng.integers(5, 8)), int(rng.integers(12, 18))
        mortar = ((yy % bh) == 0) | (((xx + (yy // bh % 2) * bw // 2) % bw) == 0)
        img = t[1] * (0.8 + 0.4 * _smooth(rng, h, w, 4))[..., None]
        img[mortar] = t[0]
        return img
    if kind == "foliage":
        n = 0.5 * _smooth(rng, h, w, 10) + 0.5 * _smooth(rng, h, w, 3)
        return t[0] * (0.4 + 1.1 * n)[..., None]
    if kind == "glass":
        img = t[0] * (0.7 + 0.6 * _smooth(rng, h, w, 15))[..., None]
        img[(xx % int(rng.integers(20, 35))) < 3] = t[1]
        img[(yy % int(rng.integers(30, 55))) < 2] = t[1]
        return img
    if kind == "shops":
        img = np.empty((h, w, 3), np.float32)
        x = 0
        while x < w:
            pw = int(rng.integers(15, 40))
            img[:, x : x + pw] = t[int(rng.integers(len(t)))]
            x += pw
        return img * (0.75 + 0.35 * _smooth(rng, h, w, 8))[..., None]
    if kind in ("tiles", "floor"):  # paving or indoor floor: tiles of two or three tones
        size = int(rng.integers(7, 15))
        shift = (yy // size % 2) * size // 2
        pick = (yy // size * 7 + (xx + shift) // size * 3) % len(t)
        img = np.stack(t)[rng.permutation(len(t))[pick]]
        img *= (0.8 + 0.35 * _smooth(rng, h, w, 3))[..., None]
        img[((yy % size) == 0) | (((xx + shift) % size) == 0)] *= 0.6
        return img
    if kind == "asphalt":
        img = t[0] * (0.6 + 0.8 * _smooth(rng, h, w, 2))[..., None]
        line = int(rng.integers(h // 3, h))
        img[max(0, line - 2) : line + 2] = t[1]
        return img
    if kind == "grass":
        return t[0] * (0.4 + 1.0 * _smooth(rng, h, w, 2))[..., None]
    return t[0] * (0.8 + 0.3 * _smooth(rng, h, w, 24))[..., None]  # plain wall


def _strips(
    rng: np.random.Generator,
    campus: Campus,
    kinds: tuple[str, ...],
    h: int,
    w: int,
    width: tuple[int, int],
) -> tuple[np.ndarray, list[str]]:
    """A band of the scene made of side-by-side pieces (a shop, a wall, a hedge...)."""
    img = np.empty((h, w, 3), np.float32)
    used: list[str] = []
    x = 0
    while x < w:
        pw = min(int(rng.integers(*width)), w - x)
        kind = kinds[int(rng.integers(len(kinds)))]
        tones = campus.tones[(kind, int(rng.integers(VARIANTS)))]
        img[:, x : x + pw] = _material(rng, kind, tones, h, pw)
        used.append(kind)
        x += pw
    return img, used


def _muted(rng: np.random.Generator, n: int, spread: int = 110) -> list[RGB]:
    """Clutter colours: any brightness, modest saturation (haze, distance, dirt)."""
    c = 128.0 + rng.integers(-spread, spread + 1, (n, 3))
    c = c.mean(axis=1, keepdims=True) + CLUTTER_SATURATION * (c - c.mean(axis=1, keepdims=True))
    return [(int(r), int(g), int(b)) for r, g, b in np.clip(c, 0, 255)]


def make_scene(
    rng: np.random.Generator, campus: Campus, width: int, height: int, crop_width: int
) -> tuple[str, Image.Image]:
    """One camera's view of the campus: (short description, RGB image of width x height).

    Drawn at half that size (output-pixel detail is all a 64x128 crop keeps) and
    doubled at the end: 4x less work than drawing at the supersampled size.
    """
    w, h = width // 2, height // 2
    horizon = int(h * rng.uniform(*HORIZON))
    img = np.empty((h, w, 3), np.float32)
    img[:horizon], backdrops = _strips(rng, campus, BACKDROPS, horizon, w, (30, 100))
    img[horizon:], grounds = _strips(rng, campus, GROUNDS, h - horizon, w, (75, 200))
    grey = img.mean(axis=2, keepdims=True)
    img = grey + SATURATION * (img - grey)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(pil)
    n = int(CLUTTER_DENSITY * w * horizon / 50)
    xs, ys = rng.uniform(-5, w, n), rng.uniform(-5, horizon, n)
    ws, hs = rng.uniform(3, 14, n), rng.uniform(3, 14, n)
    shapes = rng.choice(3, n, p=[0.6, 0.15, 0.25])  # signs and goods, round things, rails
    fills = _muted(rng, n)
    for i in range(n):
        box = (xs[i], ys[i], xs[i] + ws[i], ys[i] + hs[i])
        if shapes[i] == 0:
            draw.rectangle(box, fill=fills[i])
        elif shapes[i] == 1:
            draw.ellipse(box, fill=fills[i])
        else:
            draw.line(box, fill=fills[i], width=2)
    for _ in range(int(rng.integers(3, 8) * width / crop_width)):  # poles, far pedestrians
        x = float(rng.uniform(0, w))
        if rng.random() < 0.5:
            draw.rectangle(
                (x, 0, x + rng.uniform(1.5, 4.5), horizon + rng.uniform(5, 30)),
                fill=_jitter(rng, (70, 70, 72), 30),
            )
        else:
            hgt = float(rng.uniform(20, 45))
            base = horizon + float(rng.uniform(-5, 15))
            draw.ellipse((x, base - hgt, x + hgt * 0.3, base), fill=_muted(rng, 1)[0])
    pil = pil.filter(ImageFilter.GaussianBlur(float(rng.uniform(*BLUR))))
    grain = rng.normal(0.0, GRAIN, (h, w, 3)).astype(np.float32)
    out = np.clip(np.asarray(pil, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    name = "+".join(dict.fromkeys(backdrops)) + " over " + "+".join(dict.fromkeys(grounds))
    return name, Image.fromarray(out, "RGB").resize((width, height), Image.Resampling.BILINEAR)
