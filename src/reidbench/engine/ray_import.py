"""Importing Ray: one place that turns a missing install into a UserError.

Its own module so the engine and the pipelines it runs (features, retrieval, judges)
import it without importing each other.
"""

from __future__ import annotations

from typing import Any

from reidbench.errors import UserError


def import_ray() -> Any:
    """`ray`, or a UserError that says how to install it."""
    try:
        import ray
        import ray.data  # the features pipeline needs Ray Data, not only Ray core
    except ImportError as exc:
        raise UserError(
            "the ray engine needs Ray: pip install 'reidbench[ray]' (or use --engine local)"
        ) from exc
    return ray
