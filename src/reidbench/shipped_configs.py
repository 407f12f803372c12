"""The example configs that ship inside the package (`reidbench config list|show NAME`).

They live in src/reidbench/configs/ (package data, so a wheel has them); the
repository's top-level configs/ holds the same files for users of a checkout, and
tests/test_config_cli.py keeps the two identical.
"""

from __future__ import annotations

import sys
from importlib.resources import files

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # pragma: no cover - exercised on 3.10 only (the module is new in 3.11)
    from importlib.abc import Traversable

from reidbench.errors import UserError


def _root() -> Traversable:
    return files("reidbench") / "configs"


def _walk(folder: Traversable, prefix: str = "") -> list[str]:
    names: list[str] = []
    for entry in folder.iterdir():
        if entry.is_dir():
            names.extend(_walk(entry, f"{prefix}{entry.name}/"))
        elif entry.name.endswith(".toml"):
            names.append(f"{prefix}{entry.name[: -len('.toml')]}")
    return sorted(names)


def list_configs() -> list[str]:
    """Names such as `demo`, `paper-market1501`, `rerank/market1501`."""
    return _walk(_root())


def config_text(name: str) -> str:
    """The TOML text of a shipped config, by name (a trailing `.toml` is accepted)."""
    key = name.removesuffix(".toml")
    if key not in list_configs():
        raise UserError(
            f"no shipped config {name!r}; choose one of {', '.join(list_configs())} "
            "(`reidbench config list`)"
        )
    return _root().joinpath(*f"{key}.toml".split("/")).read_text(encoding="utf-8")
