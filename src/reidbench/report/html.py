"""Render the report template (jinja2, autoescape on, strict about undefined names)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("reidbench.report", "templates"),
        # Model text reaches this page; autoescape everywhere and never `|safe` on it.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(context: dict[str, Any]) -> str:
    """The complete, self-contained report page for a context from `build_context`."""
    return _environment().get_template("report.html.j2").render(**context)
