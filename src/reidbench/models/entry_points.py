"""Third-party embedders from the `reidbench.embedders` entry-point group, loaded once.

An entry point names either an `EmbedderSpec` (registered as is) or a function
that calls `reidbench.models.register_embedder` itself (docs/extending.md).
"""

from __future__ import annotations

from typing import Any


def load_embedder_plugins() -> None:
    import reidbench.models as models
    from reidbench.plugins import EMBEDDERS, load_entry_points

    def register(obj: Any) -> None:
        models.register_embedder(obj)

    load_entry_points(EMBEDDERS, register)
