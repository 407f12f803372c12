"""The report's sections for `[[tasks]]` other than pairs: one view function per task kind.

A view takes (task name, its metrics.json `tasks.<name>` block, system colours) and returns
an `extras.ExtraSection`. A new task kind adds its line to `_VIEWS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from reidbench.report.model import as_map

_VIEWS: dict[str, str] = {
    "choice": "reidbench.report.choice_view:choice_section",
    "gallery": "reidbench.report.gallery_view:gallery_section",
}


def task_sections(metrics: Mapping[str, Any], colours: Mapping[str, str]) -> list[Any]:
    """One report section per task block of metrics.json whose kind has a view."""
    out = []
    for name, block in as_map(metrics.get("tasks")).items():
        block = as_map(block)
        ref = _VIEWS.get(str(block.get("kind")))
        if ref is None:
            continue  # no view (yet): the block is still in metrics.json
        module, _, attr = ref.partition(":")
        out.append(getattr(importlib.import_module(module), attr)(str(name), block, colours))
    return out
