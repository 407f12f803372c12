"""Package layout: no import cycles inside src/reidbench (lazy imports included), and the old
import paths of moved modules still work, with a DeprecationWarning, for one release."""

from __future__ import annotations

import ast
import importlib
import sys
import warnings
from pathlib import Path

import pytest

import reidbench
from reidbench._moved import MOVED

SRC = Path(reidbench.__file__).resolve().parent.parent


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(
    name: str, tree: ast.AST, is_package: bool, known: set[str]
) -> list[tuple[str, int]]:
    """(module, line) for every import in `tree` that names a module of `known`.

    Every import statement counts, at module level or inside a function (a lazy import
    is a cycle waiting for the wrong call order); only `if TYPE_CHECKING:` blocks, which
    never run, are skipped. `from pkg import name` is an edge to `pkg.name` when that is a
    module, else to `pkg` itself: its `__init__` runs, re-exports and all. Relative imports
    resolve against the importing module's package. Parent packages that Python runs
    implicitly are not edges: a package importing its own submodules is fine."""
    package = name if is_package else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub if sub in known else target, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    edges = []
    for target, line in found:
        while target not in known and "." in target:  # `import a.b.Name`-style leftovers
            target = target.rpartition(".")[0]
        if target in known and target != name:
            edges.append((target, line))
    return edges


def import_graph(root: Path) -> dict[str, list[tuple[str, int]]]:
    """module -> [(imported module, line)] for every module of the package at `root`."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    known = set(files)
    return {
        name: imported_modules(name, ast.parse(path.read_text()), path.name == "__init__.py", known)
        for name, path in files.items()
    }


def find_cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """One concrete cycle per strongly connected component (iterative Tarjan, then a path)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            advanced = False
            for target, _line in edges:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph[target])))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    cycles = []
    for component in components:
        first = min(component)
        # breadth-first back to `first` inside the component: the shortest cycle through it
        paths = {first: [first]}
        queue = [first]
        cycle = None
        while queue and cycle is None:
            node = queue.pop(0)
            for target, line in graph[node]:
                if target not in component:
                    continue
                step = [*paths[node][:-1], f"{node}:{line}", target]
                if target == first:
                    cycle = step
                    break
                if target not in paths:
                    paths[target] = step
                    queue.append(target)
        cycles.append(cycle or sorted(component))
    return cycles


def _graph_of(tmp_path: Path, files: dict[str, str]) -> dict[str, list[tuple[str, int]]]:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return import_graph(tmp_path / "pkg")


def test_the_walker_sees_lazy_relative_and_reexport_cycles(tmp_path: Path) -> None:
    graph = _graph_of(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import f\n",
            "pkg/a.py": "def f():\n    from .b import g\n    return g\n",
            "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.c\n",
            "pkg/c.py": "import pkg.b\n",
            "pkg/sub/__init__.py": "from pkg.sub.x import h\n",
            "pkg/sub/x.py": "from pkg import sub\nh = 1\n",  # a submodule importing its shim
            "pkg/sub/y.py": "from . import x\n",
        },
    )
    assert ("pkg.b", 2) in graph["pkg.a"]  # lazy and relative
    assert graph["pkg.b"] == []  # TYPE_CHECKING only
    assert graph["pkg.sub.x"] == [("pkg.sub", 1)]  # `from pkg import sub`: the subpackage
    assert graph["pkg.sub.y"] == [("pkg.sub.x", 1)]
    cycles = find_cycles(graph)
    assert cycles == [["pkg.sub:1", "pkg.sub.x:1", "pkg.sub"]]
    assert find_cycles({"a": [("b", 3)], "b": [("a", 7)], "c": [("a", 1)]}) == [["a:3", "b:7", "a"]]


@pytest.mark.slow
def test_no_import_cycles_in_the_package() -> None:
    cycles = find_cycles(import_graph(SRC / "reidbench"))
    assert not cycles, "import cycles (module:line -> ...):\n" + "\n".join(
        " -> ".join(c) for c in cycles
    )


def test_flow_packages_exist() -> None:
    """The layout mirrors the flow (docs/extending.md, "Import paths")."""
    for package in ("reidbench.pairs", "reidbench.datasets.synthetic", "reidbench.rundir"):
        assert hasattr(importlib.import_module(package), "__path__"), package
    root = SRC / "reidbench"
    for gone in ("pairs_hard.py", "retrieval.py", "rundir_lock.py", "report/browser.py"):
        assert not (root / gone).exists(), gone
    assert not list((root / "datasets").glob("synthetic_*.py"))


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_module_paths_warn_and_are_the_new_modules(old: str) -> None:
    new = importlib.import_module(MOVED[old])
    sys.modules.pop(old, None)  # an earlier import cached the old name
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {MOVED[old]}"):
        assert importlib.import_module(old) is new


def test_documented_old_names_still_work() -> None:
    from reidbench.pairs import curate_pairs
    from reidbench.rundir import RunDir, open_run

    assert curate_pairs.__module__ == "reidbench.pairs.curate"
    import reidbench.fusion as fusion

    with pytest.warns(DeprecationWarning, match=r"reidbench\.fusion\.read_run"):
        assert fusion.read_run is open_run
    with pytest.warns(DeprecationWarning, match=r"reidbench\.fusion\.RunData"):
        assert fusion.RunData is RunDir
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        sys.modules.pop("reidbench.metrics.run_metrics", None)
        import reidbench.metrics.run_metrics as old_metrics
    from reidbench.metrics.run import compute_metrics

    assert old_metrics.compute_metrics is compute_metrics
