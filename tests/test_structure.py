"""The shape of the code, checked: harness's modules import each other without a cycle.

A cycle means two modules that cannot be read (or changed) one without the other; the shared part
belongs in a module below both. The graph is read from the source (``ast``), so an import inside a
function or under ``TYPE_CHECKING`` counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Collection
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "harness"


def module_name(path: Path) -> str:
    """``harness/report/model.py`` -> ``harness.report.model``; a package is its ``__init__``'s name."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def harness_modules() -> dict[str, Path]:
    """Every module of the harness package, by dotted name."""
    return {module_name(path): path for path in sorted(HARNESS.rglob("*.py"))}


def imported(path: Path, name: str, modules: Collection[str]) -> set[str]:
    """The harness modules one file imports, anywhere in it (relative imports resolved; ``from harness
    import x`` is the module ``harness.x`` when that is a module, else the package ``harness``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # harness.report.model.Results -> harness.report.model
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """harness's modules, each with the harness modules it imports."""
    modules = harness_modules()
    return {name: imported(path, name, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path whose first and last module are the same, or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_path:
                return path[path.index(nxt):] + [nxt]
            if nxt not in done:
                cycle = visit(nxt)
                if cycle is not None:
                    return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle is not None:
                return cycle
    return None


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    assert "harness.states" in graph["harness.report.model"]  # from harness.states import ...
    assert "harness.known_issues" in graph["harness.report.model"]  # from harness import known_issues as ki
    assert "harness.report.build" in graph["harness.run"]  # inside a function


def test_find_cycle_names_the_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_harness_imports_have_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())
