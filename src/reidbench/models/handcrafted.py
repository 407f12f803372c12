"""`handcrafted`: a colour + texture descriptor of the ELF / LOMO family (offline baseline).

Not a ReID-trained model: it is the classic pre-deep-learning baseline that
needs no weights. The crop is resized to 128x64 and cut into 7 horizontal
stripes of 32 rows with a 16-row step (half-overlapping, as LOMO's sliding
windows). Per stripe it takes 16-bin histograms of H, S, V (HSV) and L, a, b
(CIELAB), and a 59-bin histogram of uniform 8-neighbour LBP codes on the luma
channel: 7 x (6 x 16 + 59) = 1085 dimensions. Each histogram is L1-normalised,
square-rooted (Hellinger / power normalisation, which tames dominant bins), and
the concatenation is L2-normalised, so cosine similarity compares crops.

Written with numpy and Pillow only: scikit-image (which has LBP) is not a
dependency, and LBP on a 128x64 image is eight array comparisons.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from reidbench.models.base import Embedder

DESCRIPTOR_VERSION = 1  # bump when the maths changes: it is part of the fingerprint
HEIGHT, WIDTH = 128, 64
STRIPE, STEP = 32, 16
COLOUR_BINS = 16
LBP_BINS = 59  # 58 uniform patterns of 8 bits + one bin for all non-uniform ones
_AB_RANGE = (-100.0, 100.0)  # a*, b* of sRGB colours lie within about [-108, 98]


def _uniform_lbp_table() -> np.ndarray:
    """Map each 8-bit code to its uniform-pattern label (<= 2 circular 0/1 transitions)."""
    table = np.full(256, LBP_BINS - 1, dtype=np.int64)
    label = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        transitions = sum(bits[i] != bits[(i + 1) % 8] for i in range(8))
        if transitions <= 2:
            table[code] = label
            label += 1
    assert label == LBP_BINS - 1
    return table


_LBP_TABLE = _uniform_lbp_table()
# sRGB (0..255) to linear light, as a lookup table.
_C = np.arange(256, dtype=np.float64) / 255.0
_SRGB_TO_LINEAR = np.where(_C <= 0.04045, _C / 12.92, ((_C + 0.055) / 1.055) ** 2.4)
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 sRGB -> float (H, W, 3) CIELAB (D65), the textbook formula."""
    lin = _SRGB_TO_LINEAR[rgb]
    xyz = (lin @ _RGB_TO_XYZ.T) / _WHITE_D65
    eps = (6 / 29) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab = np.empty_like(f)
    lab[..., 0] = 116 * f[..., 1] - 16
    lab[..., 1] = 500 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200 * (f[..., 1] - f[..., 2])
    return lab


def lbp_codes(gray: np.ndarray) -> np.ndarray:
    """Basic 8-neighbour LBP at radius 1 (edge-replicated border), codes 0..255."""
    padded = np.pad(gray, 1, mode="edge")
    h, w = gray.shape
    centre = padded[1 : h + 1, 1 : w + 1]
    offsets = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]
    code = np.zeros((h, w), dtype=np.int64)
    for bit, (dy, dx) in enumerate(offsets):
        neighbour = padded[1 + dy : h + 1 + dy, 1 + dx : w + 1 + dx]
        code |= (neighbour >= centre).astype(np.int64) << bit
    return code


def _quantise(x: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    q = np.floor((x - lo) * (bins / (hi - lo))).astype(np.int64)
    return np.clip(q, 0, bins - 1)


def describe_image(image: Image.Image) -> np.ndarray:
    """The unnormalised-by-L2 descriptor of one crop (float32, 1085 dims)."""
    rgb_im = image.convert("RGB").resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)
    rgb = np.asarray(rgb_im, dtype=np.uint8)
    hsv = np.asarray(rgb_im.convert("HSV"), dtype=np.int64)
    lab = srgb_to_lab(rgb)
    gray = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    channels = [
        hsv[..., 0] * COLOUR_BINS // 256,
        hsv[..., 1] * COLOUR_BINS // 256,
        hsv[..., 2] * COLOUR_BINS // 256,
        _quantise(lab[..., 0], 0.0, 100.0, COLOUR_BINS),
        _quantise(lab[..., 1], *_AB_RANGE, COLOUR_BINS),
        _quantise(lab[..., 2], *_AB_RANGE, COLOUR_BINS),
        _LBP_TABLE[lbp_codes(gray)],
    ]
    sizes = [COLOUR_BINS] * 6 + [LBP_BINS]
    offsets = np.cumsum([0, *sizes[:-1]])
    codes = np.stack([c + o for c, o in zip(channels, offsets, strict=True)])  # (7, H, W)
    per_stripe = int(sum(sizes))
    feats = []
    for top in range(0, HEIGHT - STRIPE + 1, STEP):
        counts = np.bincount(codes[:, top : top + STRIPE].ravel(), minlength=per_stripe)
        # Every channel histogram counts each stripe pixel once: dividing by the pixel
        # count L1-normalises all of them at once.
        feats.append(np.sqrt(counts / (STRIPE * WIDTH)))
    return np.concatenate(feats).astype(np.float32)


NUM_STRIPES = (HEIGHT - STRIPE) // STEP + 1
DIM = NUM_STRIPES * (6 * COLOUR_BINS + LBP_BINS)


class HandcraftedEmbedder(Embedder):
    """Deterministic, weight-free; the descriptor is computed in `prepare` (decode threads)."""

    def __init__(self) -> None:
        self.name = "handcrafted"
        self.dim = DIM
        self.info = {
            "model": self.name,
            "dim": DIM,
            "trained_for_reid": False,
            "kind": "hand-crafted colour/texture baseline (ELF/LOMO family)",
            "device": "cpu",
            "precision": "fp32",
        }

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": DESCRIPTOR_VERSION,
            "size_hw": [HEIGHT, WIDTH],
            "stripe": [STRIPE, STEP],
            "bins": [COLOUR_BINS, LBP_BINS],
            "ab_range": list(_AB_RANGE),
        }

    def prepare(self, image: Image.Image) -> np.ndarray:
        return describe_image(image)

    def embed_prepared(self, batch: np.ndarray, camids: Sequence[int] | None = None) -> np.ndarray:
        x = np.asarray(batch, dtype=np.float32).reshape(len(batch), -1)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return (x / np.maximum(norms, 1e-12)).astype(np.float32)
