"""Third-party extensions through Python entry points, loaded lazily and once per group.

A plugin distribution declares, in its packaging metadata, e.g.

    [project.entry-points."reidbench.datasets"]
    myformat = "my_pkg.reid:register"

The object an entry point names is called with no arguments (it calls the
matching `register_*`), or, when it is a spec object rather than a callable,
handed to the group's register function. importlib.metadata does the discovery;
this module only remembers which groups it has already loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from reidbench.errors import UserError

DATASETS = "reidbench.datasets"
EMBEDDERS = "reidbench.embedders"
PROVIDERS = "reidbench.providers"

_loaded: set[str] = set()


def load_entry_points(group: str, register: Callable[[Any], Any]) -> None:
    """Import every plugin of `group` once; a broken plugin is a UserError naming it."""
    if group in _loaded:
        return
    _loaded.add(group)
    for ep in entry_points(group=group):
        try:
            obj = ep.load()
            if callable(obj) and not hasattr(obj, "name"):
                obj()
            else:
                register(obj)
        except UserError:
            raise
        except Exception as exc:  # a plugin's own bug: name it instead of a traceback
            raise UserError(
                f"plugin {ep.name!r} ({ep.value}) in entry-point group {group} failed to load: "
                f"{type(exc).__name__}: {exc}; fix or uninstall that package"
            ) from exc


def reset(group: str | None = None) -> None:
    """Forget which groups were loaded (tests install plugins on the fly)."""
    if group is None:
        _loaded.clear()
    else:
        _loaded.discard(group)
