"""CLI flags built from the config models, so `reidbench pairs` / `fuse` and a run config
cannot drift apart: help text, bounds and defaults have one home, the pydantic field.

tests/test_cli_config_drift.py checks every field of the models these commands mirror.
"""

from __future__ import annotations

from typing import Any

import typer
from pydantic import BaseModel


def config_option(model: type[BaseModel], field: str, *flags: str, **kwargs: Any) -> Any:
    """A typer.Option for `model.field`: its description as help, its ge/le/gt/lt as bounds."""
    info = model.model_fields[field]
    if info.description is None:
        raise TypeError(f"{model.__name__}.{field} has no description to use as help")
    for rule in info.metadata:  # pydantic's Ge / Le constraint objects
        if getattr(rule, "ge", None) is not None:
            kwargs.setdefault("min", rule.ge)
        if getattr(rule, "le", None) is not None:
            kwargs.setdefault("max", rule.le)
    return typer.Option(*flags, help=info.description, **kwargs)


def config_default(model: type[BaseModel], field: str) -> Any:
    """The field's default, for a flag's Python default (a factory is called)."""
    info = model.model_fields[field]
    return info.get_default(call_default_factory=True)
