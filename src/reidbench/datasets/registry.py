"""Dataset formats: one `DatasetFormat` spec per format, registered by name.

Adding a format is one module with a loader plus one `register_dataset_format`
call (or an entry point in the `reidbench.datasets` group for a third-party
package); detection, `--format`, aliases, titles and `[dataset.options]` all
read this table (docs/extending.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from reidbench.datasets.base import Dataset
from reidbench.errors import UserError


class NoOptions(BaseModel):
    """A format without options."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Detection:
    """What a detect rule found: the format (a rule may name another registered one),
    the human reason printed by `dataset info`, and whether ranges are relaxed."""

    format: str
    reason: str
    generic: bool = False


@dataclass(frozen=True)
class DatasetFormat:
    """name: canonical key; title: printed name; aliases: other spellings accepted by
    --format; detect: ROOT -> Detection or None, tried in ascending `priority`;
    load(ROOT, options, generic) -> Dataset; options: pydantic model of its options."""

    name: str
    title: str
    load: Callable[[Path, Any, bool], Dataset]
    detect: Callable[[Path], Detection | None] | None = None
    priority: int = 100
    aliases: tuple[str, ...] = ()
    options: type[BaseModel] = NoOptions
    accepts_file: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


_FORMATS: dict[str, DatasetFormat] = {}


def _key(name: str) -> str:
    return re.sub(r"[-_ .]", "", name.strip().lower())


def register_dataset_format(spec: DatasetFormat, *, replace: bool = False) -> DatasetFormat:
    """Add a format; registering a taken name or alias is an error unless `replace`."""
    if not replace:
        taken = {_key(n) for n in (spec.name, *spec.aliases)} & set(_lookup())
        if taken:
            raise ValueError(f"dataset format name(s) already registered: {sorted(taken)}")
    _FORMATS[spec.name] = spec
    return spec


def _lookup() -> dict[str, str]:
    keys: dict[str, str] = {}
    for spec in _FORMATS.values():
        keys[_key(spec.name)] = spec.name
        for alias in spec.aliases:
            keys.setdefault(_key(alias), spec.name)
    return keys


def _plugins() -> None:
    from reidbench.plugins import DATASETS, load_entry_points

    load_entry_points(DATASETS, register_dataset_format)


def dataset_formats() -> dict[str, DatasetFormat]:
    """Every registered format by name, built-ins first, plugins loaded on first use."""
    _plugins()
    return dict(_FORMATS)


def get_dataset_format(name: str) -> DatasetFormat:
    """The spec for a name or alias (case, '-', '_' and spaces ignored)."""
    _plugins()
    canonical = _lookup().get(_key(name))
    if canonical is None:
        raise UserError(
            f"unknown dataset format {name!r}; use one of {', '.join(dataset_formats())}"
        )
    return _FORMATS[canonical]


def detection_rules() -> list[DatasetFormat]:
    """Formats with a detect rule, in the order they are tried."""
    specs = [s for s in dataset_formats().values() if s.detect is not None]
    return sorted(specs, key=lambda s: s.priority)


def parse_options(spec: DatasetFormat, values: Mapping[str, Any]) -> BaseModel:
    """Validate `[dataset.options]` / `--dataset-option` values against the format's model."""
    try:
        return spec.options.model_validate(dict(values))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors()
        )
        known = ", ".join(spec.options.model_fields) or "(none)"
        raise UserError(
            f"dataset option for {spec.name}: {problems}; its options are {known}"
        ) from exc


def parse_option_pairs(pairs: list[str] | None) -> dict[str, str]:
    """`k=v` strings from the command line into a dict (pydantic types the values)."""
    out: dict[str, str] = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--dataset-option {item!r} is not KEY=VALUE; e.g. variant=labeled")
        out[key.strip()] = value.strip()
    return out
