"""Small helpers: array-likes in (`to_numpy`), strict JSON out (no NaN, no Infinity, no numpy
types)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def to_numpy(x: Any) -> np.ndarray:
    """numpy view of an array-like; torch tensors are detached and moved to the CPU."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def fnum(x: Any) -> float | None:
    """A finite Python float, or None for None/NaN/inf (the caller records why)."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def fnums(values: Any) -> list[float | None]:
    return [fnum(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def inum(x: Any) -> int:
    return int(x)
