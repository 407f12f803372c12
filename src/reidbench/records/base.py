"""The base of every record: open (unknown keys kept), dumped back exactly as read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from reidbench.errors import UserError

# Numbers in records keep their JSON type: a plain `float` field would turn 1 into 1.0.
Number = int | float


class Record(BaseModel):
    """A JSON object with some keys typed; every other key is kept as read (extra="allow").

    `to_dict()` gives back the keys that were present (plus the ones a writer set), in
    their order, so that typing a record never changes the file it is written to.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="python", exclude_unset=True, by_alias=True)

    def to_json_dict(self) -> dict[str, Any]:
        """`to_dict()` with ``schema_version`` always written (a writer's output)."""
        out = self.to_dict()
        version = getattr(self, "schema_version", None)
        if version is not None and "schema_version" not in out:
            out = {"schema_version": version, **out}
        return out

    def extra(self, key: str, default: Any = None) -> Any:
        """A key that is not a typed field (e.g. a metric another module adds)."""
        return (self.__pydantic_extra__ or {}).get(key, default)


def read_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; a UserError names the file and the fix otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UserError(f"{path}: not found; pass a run directory made by `reidbench run`") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable {what} ({exc}); re-create it") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: a {what} must be a JSON object; re-create it")
    return data


def validation_error(where: str, what: str, exc: ValidationError) -> UserError:
    """One line naming the first bad field, for a record that does not fit its model."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    return UserError(
        f"{where}: {what} field {loc}: {err.get('msg', 'invalid')}; the file was edited or "
        "comes from another tool, re-run `reidbench run` into a fresh directory"
    )
