"""Old import paths of modules that moved into packages, kept working for one release.

The files themselves moved (`git mv`), so nothing is left at the old paths; a meta-path
finder maps each old name to its new module, with a DeprecationWarning. Appended to
`sys.meta_path`, it is asked only after the normal finders found no file.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

_SYN = "reidbench.datasets.synthetic"
_SYNTHETIC = ("camera", "check", "identity", "render", "scene", "sheet")

# old module -> new module (docs/extending.md, "Import paths")
MOVED: dict[str, str] = {
    "reidbench.pairs_hard": "reidbench.pairs.hard",
    "reidbench.pairs_pools": "reidbench.pairs.pools",
    "reidbench.pairs_rng": "reidbench.pairs.rng",
    "reidbench.pairs_triplets": "reidbench.pairs.triplets",
    "reidbench.retrieval": "reidbench.retrieval_run",
    "reidbench.rundir_lock": "reidbench.rundir.lock",
    **{
        f"reidbench.datasets.synthetic_{m}": f"reidbench.datasets.synthetic.{m}" for m in _SYNTHETIC
    },
}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module name to the new module object itself (one module, two names)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # a throwaway module; exec_module swaps in the real one

    def exec_module(self, module: ModuleType) -> None:
        new = MOVED[module.__name__]
        warnings.warn(
            f"{module.__name__} moved to {new}; the old path goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        # The import system returns whatever sys.modules holds after exec_module, so the
        # old name is the new module object (monkeypatching either name patches both).
        sys.modules[module.__name__] = importlib.import_module(new)


def install() -> None:
    """Idempotent: one finder per interpreter, even if `reidbench` is reloaded."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
