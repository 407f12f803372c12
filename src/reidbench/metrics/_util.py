"""Small helpers that keep metric output strict JSON (no NaN, no Infinity, no numpy types)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


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
