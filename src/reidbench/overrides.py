"""`--set a.b=v`: command-line overrides of a config, typed by the config models.

The value is read as a TOML value when it parses as one (`10`, `0.5`, `true`,
`["a", "b"]`, `"text"`), else as a bare string, and pydantic then checks it
against the field like any value in the file. A list of tables (`systems`) is
addressed by index or by a system's `name`: `systems.gpt-4o.max_calls=20`.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from reidbench.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


def parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _child(node: Any, key: str, where: str) -> Any:
    if isinstance(node, list):
        if key.isdigit() and int(key) < len(node):
            return int(key)
        names = [item.get("name") for item in node if isinstance(item, dict)]
        if key in names:
            return names.index(key)
        raise UserError(
            f"--set {where}: no item {key!r} in the list; use an index (0-{len(node) - 1}) "
            f"or a name of {names}"
        )
    return key


def apply_overrides(data: dict[str, Any], sets: Sequence[str]) -> dict[str, Any]:
    """A copy of the raw config `data` with every `KEY.PATH=VALUE` applied, in order."""
    out = copy.deepcopy(data)
    for item in sets:
        path, sep, raw = item.partition("=")
        keys = [k.strip() for k in path.strip().split(".")]
        if not sep or not all(keys):
            raise UserError(f"--set {item!r} is not KEY.PATH=VALUE; e.g. --set pairs.positives=50")
        node: Any = out
        for i, key in enumerate(keys):
            where = ".".join(keys[: i + 1])
            index = _child(node, key, where)
            if i == len(keys) - 1:
                node[index] = parse_value(raw.strip())
            else:
                if isinstance(node, dict) and index not in node:
                    node[index] = {}
                node = node[index]
                if not isinstance(node, (dict, list)):
                    raise UserError(f"--set {item!r}: {where} is a value, not a table")
    return out


def _keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the table at `loc`, following model-typed fields (lists by item)."""
    import typing

    node: Any = model
    for part in loc:
        if part.isdigit():
            continue
        is_model = isinstance(node, type) and issubclass(node, BaseModel)
        field = node.model_fields.get(part) if is_model else None
        if field is None:
            return []
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not models:
            return []
        node = models[0]
    return list(node.model_fields)


def override_error(exc: ValidationError, sets: Sequence[str], model: type[BaseModel]) -> str | None:
    """One line naming the `--set` a validation error comes from, or None if from the file."""
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"]]
    for item in sets:
        keys = item.partition("=")[0].strip().split(".")
        if keys[0] == loc[0] and (len(keys) == len(loc) or keys[-1] == loc[-1]):
            if first["type"] == "extra_forbidden":
                return (
                    f"--set {item}: unknown key {loc[-1]!r}; check the spelling against the "
                    f"config reference (docs/experiments.md), e.g. keys of {model.__name__}: "
                    f"{', '.join(model.model_fields)}"
                    if len(loc) == 1
                    else f"--set {item}: unknown key {loc[-1]!r} in [{'.'.join(loc[:-1])}]; "
                    f"its keys are {', '.join(_keys(model, loc[:-1]))} (docs/experiments.md)"
                )
            return f"--set {item}: {first['msg']}; give a value of the field's type"
    return None
