"""Render the report template (jinja2, autoescape on, strict about undefined names)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jinja2
from markupsafe import Markup, escape

# Break opportunities in system names: after separators (not "_" or ".": "osnet_x1_0"
# and "gpt-4.1" read badly split there), so "fused(osnet_x1_0+efficientnet-lite0)"
# wraps as "fused(" / "osnet_x1_0+" / ... and never mid-word.
_BREAK_AFTER = re.compile(r"(?<=[(+\-/:,|@\]])(?=\w|[(\[])")


def wbr(name: object) -> Markup:
    """A name, escaped, with <wbr> break opportunities after separators.

    Each piece is escaped separately and only the <wbr> tags are markup, so model or
    user text can never inject HTML through this filter.
    """
    parts = _BREAK_AFTER.split(str(name))
    return Markup("<wbr>").join(escape(p) for p in parts)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reidbench.report", "templates"),
        # Model text reaches this page; autoescape everywhere and never `|safe` on it.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wbr"] = wbr
    return env


def render_html(context: dict[str, Any]) -> str:
    """The complete, self-contained report page for a context from `build_context`."""
    return _environment().get_template("report.html.j2").render(**context)
