"""Number formatting shared by the HTML report and the Markdown summary.

One place decides how a rate, an interval, a p-value or a price is written, so
the two outputs never disagree about the same number.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

DASH = "—"


def is_num(x: Any) -> TypeGuard[float]:
    """A finite real number (bools are not numbers here)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def num(x: Any, digits: int = 3) -> str:
    """A rate or score with fixed decimals; a dash for null."""
    return f"{x:.{digits}f}" if is_num(x) else DASH


def ci_text(interval: Any, digits: int = 3) -> str:
    """`[low, high]`, or "" when there is no interval."""
    if not isinstance(interval, dict) or not is_num(interval.get("low")):
        return ""
    return f"[{num(interval['low'], digits)}, {num(interval.get('high'), digits)}]"


def with_ci(value: Any, interval: Any, digits: int = 3) -> str:
    """`0.912 [0.887, 0.934]`: the value with its interval when there is one."""
    text, ci = num(value, digits), ci_text(interval, digits)
    return f"{text} {ci}" if ci and text != DASH else text


def pct(x: Any, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%" if is_num(x) else DASH


def integer(x: Any) -> str:
    return f"{int(x):,}" if is_num(x) else DASH


def pvalue(p: Any) -> str:
    """Three significant digits; scientific below 0.001 so tiny p-values stay readable."""
    if not is_num(p):
        return DASH
    if p == 0:
        return "0"
    if p < 1e-3:
        return f"{p:.2e}"
    return f"{p:.3g}"


def usd(x: Any) -> str:
    """Dollars with enough decimals to show sub-cent amounts."""
    if not is_num(x):
        return DASH
    if x == 0:
        return "$0"
    if abs(x) >= 100:
        return f"${x:,.0f}"
    if abs(x) >= 1:
        return f"${x:.2f}"
    if abs(x) >= 0.01:
        return f"${x:.3f}"
    return f"${x:.2g}"


def seconds(x: Any) -> str:
    if not is_num(x):
        return DASH
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def threshold(value: Any, scale: Any) -> str:
    """A threshold on the system's own scale: 4 decimals on 0-1, 1 on 0-100."""
    if not is_num(value):
        return DASH
    digits = 4 if is_num(scale) and scale <= 1 else 1
    return f"{value:.{digits}f}"


def short_hash(h: Any, n: int = 12) -> str:
    return str(h)[:n] if h else DASH


def signed(x: Any, digits: int = 3) -> str:
    """A difference with its sign: `+0.020`, `-0.020`; a dash for null."""
    return f"{x:+.{digits}f}" if is_num(x) else DASH


def diff_with_ci(value: Any, interval: Any, digits: int = 3) -> str:
    """`-0.020 [-0.060, +0.020]`: a signed difference with its signed interval."""
    text = signed(value, digits)
    if text == DASH or not isinstance(interval, dict) or not is_num(interval.get("low")):
        return text
    return f"{text} [{signed(interval['low'], digits)}, {signed(interval.get('high'), digits)}]"


def paired_change(block: Any, mcnemar: Any = None, digits: int = 3) -> str:
    """One line for a paired difference and its tests, the same in the CLI and the report:
    `-0.020 [-0.060, +0.020], bootstrap p = 0.62; exact McNemar p = 1 (2 better, 3 worse)`."""
    if not isinstance(block, dict):
        return DASH
    text = diff_with_ci(block.get("diff"), block.get("ci"), digits)
    if is_num(block.get("p_value")):
        text += f", bootstrap p = {pvalue(block['p_value'])}"
    if isinstance(mcnemar, dict) and is_num(mcnemar.get("p_value")):
        text += (
            f"; exact McNemar p = {pvalue(mcnemar['p_value'])} ({integer(mcnemar.get('b'))} "
            f"better, {integer(mcnemar.get('c'))} worse)"
        )
    return text
