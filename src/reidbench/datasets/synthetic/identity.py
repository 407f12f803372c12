"""Identities of the synthetic pedestrian set: a fixed set of visible attributes per person.

Attributes are drawn from skewed palettes (many people wear black, dark blue, grey
or white, most have dark hair), so different people often share several of them
and colour alone rarely tells two people apart, as on a real street.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from dataclasses import dataclass, fields

import numpy as np

RGB = tuple[int, int, int]

# (name, colour, weight). Weights are rough street frequencies, not measured ones.
UPPER_COLOURS: tuple[tuple[str, RGB, float], ...] = (
    ("black", (28, 28, 30), 0.20),
    ("white", (226, 226, 222), 0.14),
    ("grey", (128, 128, 130), 0.10),
    ("navy", (32, 40, 78), 0.10),
    ("blue", (46, 86, 170), 0.06),
    ("light blue", (140, 178, 214), 0.05),
    ("red", (176, 34, 38), 0.07),
    ("green", (46, 112, 60), 0.04),
    ("dark green", (34, 64, 42), 0.03),
    ("yellow", (222, 192, 60), 0.03),
    ("pink", (222, 150, 170), 0.04),
    ("purple", (100, 54, 120), 0.03),
    ("brown", (98, 66, 44), 0.04),
    ("beige", (196, 176, 140), 0.04),
    ("orange", (220, 112, 40), 0.02),
)
LOWER_COLOURS: tuple[tuple[str, RGB, float], ...] = (
    ("black", (26, 26, 28), 0.30),
    ("denim", (44, 58, 92), 0.24),
    ("light denim", (96, 118, 156), 0.10),
    ("grey", (110, 110, 112), 0.12),
    ("khaki", (170, 152, 110), 0.10),
    ("white", (220, 218, 212), 0.04),
    ("brown", (90, 62, 42), 0.04),
    ("olive", (88, 90, 50), 0.03),
    ("red", (150, 36, 40), 0.03),
)
SKIN_TONES: tuple[tuple[str, RGB, float], ...] = (
    ("very light", (240, 206, 184), 0.15),
    ("light", (226, 184, 152), 0.30),
    ("medium", (198, 150, 112), 0.25),
    ("olive", (172, 128, 90), 0.12),
    ("brown", (128, 88, 60), 0.10),
    ("dark", (84, 58, 42), 0.08),
)
HAIR_COLOURS: tuple[tuple[str, RGB, float], ...] = (
    ("black", (20, 18, 18), 0.45),
    ("dark brown", (52, 36, 26), 0.25),
    ("brown", (96, 66, 40), 0.12),
    ("blonde", (200, 170, 110), 0.08),
    ("grey", (150, 148, 144), 0.06),
    ("auburn", (130, 56, 30), 0.04),
)
SHOE_COLOURS: tuple[tuple[str, RGB, float], ...] = (
    ("black", (24, 24, 24), 0.36),
    ("white", (228, 228, 228), 0.30),
    ("grey", (120, 120, 124), 0.12),
    ("brown", (86, 56, 36), 0.12),
    ("blue", (50, 70, 140), 0.05),
    ("red", (170, 40, 40), 0.05),
)
BAG_COLOURS: tuple[tuple[str, RGB, float], ...] = (
    ("black", (24, 24, 26), 0.50),
    ("grey", (100, 100, 104), 0.12),
    ("navy", (36, 44, 80), 0.10),
    ("brown", (110, 74, 46), 0.12),
    ("red", (160, 40, 44), 0.06),
    ("beige", (190, 170, 130), 0.06),
    ("blue", (50, 90, 170), 0.04),
)
HAT_COLOURS: tuple[tuple[str, RGB, float], ...] = (
    ("black", (26, 26, 28), 0.45),
    ("navy", (34, 42, 80), 0.15),
    ("grey", (120, 120, 122), 0.15),
    ("white", (220, 220, 220), 0.10),
    ("red", (170, 40, 40), 0.10),
    ("beige", (190, 170, 130), 0.05),
)
# Second colour for stripes, logos and the shirt under a jacket: mostly light on dark.
ACCENT_COLOURS = UPPER_COLOURS

HAIR_LENGTHS = (("short", 0.48), ("medium", 0.20), ("long", 0.26), ("bald", 0.06))
SLEEVES = (("long", 0.55), ("short", 0.45))
PATTERNS = (("plain", 0.52), ("stripes", 0.12), ("logo", 0.16), ("jacket", 0.20))
LOWER_KINDS = (("trousers", 0.66), ("shorts", 0.20), ("skirt", 0.14))
BAGS = (("none", 0.45), ("backpack", 0.25), ("shoulder bag", 0.18), ("handbag", 0.12))
HATS = (("none", 0.82), ("cap", 0.11), ("beanie", 0.07))
LOGO_SHAPES = ("circle", "square", "bar", "triangle")
HEIGHT_RANGE = (0.85, 0.95)  # of the crop height, before the camera's scale


@dataclass(frozen=True, slots=True)
class Identity:
    """What one person looks like; every image of this person is rendered from it."""

    height: float  # fraction of the crop height the person fills at camera scale 1
    build: float  # width multiplier: 0.85 slim .. 1.2 broad
    skin: str
    skin_rgb: RGB
    hair: str
    hair_rgb: RGB
    hair_length: str
    upper: str
    upper_rgb: RGB
    upper_accent: str  # stripes, logo, or the shirt under a jacket
    upper_accent_rgb: RGB
    sleeves: str
    pattern: str
    logo_shape: str
    lower_kind: str
    lower: str
    lower_rgb: RGB
    shoes: str
    shoes_rgb: RGB
    bag: str
    bag_colour: str
    bag_rgb: RGB
    bag_side: int  # +1 the person's right side, -1 their left
    hat: str
    hat_colour: str
    hat_rgb: RGB

    def to_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def describe(self) -> str:
        """Short human label, e.g. for the contact sheet."""
        upper = f"{self.upper} {self.sleeves}-sleeve"
        if self.pattern != "plain":
            upper += f" {self.pattern}"
        parts = [upper, f"{self.lower} {self.lower_kind}"]
        if self.bag != "none":
            parts.append(f"{self.bag_colour} {self.bag}")
        if self.hat != "none":
            parts.append(self.hat)
        return ", ".join(parts)


@functools.lru_cache(maxsize=64)
def _cumulative(weights: tuple[float, ...]) -> list[float]:
    return list(itertools.accumulate(weights))


def weighted_index(rng: np.random.Generator, weights: tuple[float, ...]) -> int:
    """An index drawn with probability proportional to `weights`.

    Hand-written because `rng.choice(p=...)` validates `p` on every call and costs
    ~8x more; this runs for every image.
    """
    cum = _cumulative(weights)
    return min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """`rng.uniform(lo, hi)` as a Python float, without the array machinery."""
    return lo + (hi - lo) * rng.random()


def _pick(rng: np.random.Generator, table: tuple[tuple[str, float], ...]) -> str:
    return table[weighted_index(rng, tuple(w for _, w in table))][0]


def _colour(
    rng: np.random.Generator, palette: tuple[tuple[str, RGB, float], ...], jitter: int = 10
) -> tuple[str, RGB]:
    name, rgb, _ = palette[weighted_index(rng, tuple(w for _, _, w in palette))]
    # Two "black" jackets are never exactly the same black: fabric, wear, dye lot.
    shifted = np.clip(np.array(rgb) + rng.integers(-jitter, jitter + 1, size=3), 0, 255)
    return name, (int(shifted[0]), int(shifted[1]), int(shifted[2]))


def _contrasting(
    rng: np.random.Generator, base: RGB, palette: tuple[tuple[str, RGB, float], ...]
) -> tuple[str, RGB]:
    """An accent that stays visible against `base` (else stripes vanish)."""
    for _ in range(20):
        name, rgb = _colour(rng, palette)
        if sum(abs(a - b) for a, b in zip(rgb, base, strict=True)) > 150:
            return name, rgb
    return ("white", (226, 226, 222)) if sum(base) < 380 else ("black", (28, 28, 30))


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw one person. Uses only `rng`, so a seeded generator gives the same person."""
    lower_kind = _pick(rng, LOWER_KINDS)
    hair_length = _pick(rng, HAIR_LENGTHS)
    if lower_kind == "skirt" and hair_length in ("short", "bald") and rng.random() < 0.6:
        hair_length = "long"
    upper, upper_rgb = _colour(rng, UPPER_COLOURS)
    accent, accent_rgb = _contrasting(rng, upper_rgb, ACCENT_COLOURS)
    skin, skin_rgb = _colour(rng, SKIN_TONES, jitter=6)
    hair, hair_rgb = _colour(rng, HAIR_COLOURS, jitter=8)
    lower, lower_rgb = _colour(rng, LOWER_COLOURS)
    shoes, shoes_rgb = _colour(rng, SHOE_COLOURS)
    bag = _pick(rng, BAGS)
    bag_colour, bag_rgb = _colour(rng, BAG_COLOURS)
    hat = _pick(rng, HATS)
    hat_colour, hat_rgb = _colour(rng, HAT_COLOURS)
    return Identity(
        height=uniform(rng, *HEIGHT_RANGE),
        build=uniform(rng, 0.85, 1.2),
        skin=skin,
        skin_rgb=skin_rgb,
        hair=hair,
        hair_rgb=hair_rgb,
        hair_length=hair_length,
        upper=upper,
        upper_rgb=upper_rgb,
        upper_accent=accent,
        upper_accent_rgb=accent_rgb,
        sleeves=_pick(rng, SLEEVES),
        pattern=_pick(rng, PATTERNS),
        logo_shape=LOGO_SHAPES[int(rng.integers(len(LOGO_SHAPES)))],
        lower_kind=lower_kind,
        lower=lower,
        lower_rgb=lower_rgb,
        shoes=shoes,
        shoes_rgb=shoes_rgb,
        bag=bag,
        bag_colour=bag_colour,
        bag_rgb=bag_rgb,
        bag_side=1 if rng.random() < 0.5 else -1,
        hat=hat,
        hat_colour=hat_colour,
        hat_rgb=hat_rgb,
    )
