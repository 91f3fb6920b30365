"""The shape of the code, checked: no import cycle in harness, and the JUnit vocabulary in one home.

A cycle means two modules that cannot be read (or changed) one without the other; the shared part
belongs in a module below both. The graph is read from the source (``ast``), so an import inside a
function or under ``TYPE_CHECKING`` counts as much as one at the top.

A JUnit property name, verdict, element name or state written as a literal drifts from the constant
the reader uses (``harness.layout``, ``harness.states``); a word that only looks like one is allowed
by name, file by file, with the reason.
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
    assert "harness.matrix.known_issues" in graph["harness.report.model"]  # from harness import known_issues as ki
    assert "harness.report.build" in graph["harness.run.scheduler"]  # inside a function


def test_find_cycle_names_the_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_harness_imports_have_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


# -- code grouped by where it runs: each room imports only the rooms below it -----------------------------
ROOMS = ("matrix", "servers", "incell", "run", "models", "perf", "report")
MAY_IMPORT: dict[str, set[str]] = {  # room -> the rooms it may import, besides the ground floor
    "ground": {"matrix"},  # the ground floor reads the matrix model, nothing that runs
    "matrix": set(),  # the model: read by every side, imports none
    "servers": {"matrix"},
    "incell": {"matrix", "servers"},  # runs in the cell's venv: never the scheduler's side
    "models": {"matrix", "servers", "incell"},
    "perf": {"matrix", "servers"},  # speed and memory: starts servers apart from the cells, never in one
    "run": {"matrix", "servers", "incell", "models", "perf", "report"},
    "report": {"matrix", "models", "perf"},  # the report shows model mode's answers and perf's results
}
ENTRY_POINT = "harness.__main__"  # the command line: it wires every room


def room_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ROOMS) else "ground"


def stray_imports(graph: dict[str, set[str]]) -> list[str]:
    """Each import that reaches a room its own room may not import, as "importer -> imported"."""
    return sorted(f"{module} -> {target}" for module, targets in graph.items() if module != ENTRY_POINT
                  for target in targets
                  if room_of(target) not in {"ground", room_of(module)} | MAY_IMPORT[room_of(module)])


def test_rooms_import_only_the_rooms_below_them() -> None:
    assert stray_imports(import_graph()) == []


def test_a_stray_import_is_named() -> None:
    graph = {"harness.incell.plugin": {"harness.run.cell", "harness.layout"}, "harness.matrix": {"harness.servers"}}
    assert stray_imports(graph) == ["harness.incell.plugin -> harness.run.cell", "harness.matrix -> harness.servers"]
    assert room_of("harness.matrix") == "matrix" and room_of("harness.layout") == "ground"


# -- the JUnit vocabulary and the states have one home each -------------------------------------------
HOMES = ("harness/layout.py", "harness/states.py")
# A word can equal a property name or a state and mean something else: each such (file, value), and why.
COMPAT_JSON = "a key of compat.json's results and cells (the report's own format), not a JUnit property"
CELL_COMMAND = "the command line's subcommand 'python -m harness cell'"
BENCH_FIGURES = "a key of the benchmark's own figures, copied from the cell's property of that name"
BENCH_CAUSES = "the benchmark's name for a cause of harness reds, not the verdict it is read from"
LAYER = "a deadline layer's name (load < case < fallback < cell)"
LIVE_TABLE = "a column heading of the live table"
OPTION_DEST = "the command line's --workers (its argparse dest)"
ALLOWED: dict[str, dict[str, str]] = {  # file -> {value: why it is not the constant}
    "bench/results.py": {"case": COMPAT_JSON, "cell": COMPAT_JSON, "verdict": COMPAT_JSON,
                         "interrupted": BENCH_CAUSES, "timeout": BENCH_CAUSES, "worker-died": BENCH_CAUSES},
    "bench/run.py": {"cell": CELL_COMMAND, "server_start_s": BENCH_FIGURES, "setup_s": BENCH_FIGURES,
                     "workers": "a key of the benchmark's figures: how many suites (workers) the cell wrote"},
    "harness/__main__.py": {"cell": CELL_COMMAND, "workers": OPTION_DEST},
    "harness/options.py": {"cell": CELL_COMMAND, "workers": OPTION_DEST},
    "harness/incell/applicability.py": {"cell": "where an error points: the cell's release"},
    "harness/deadlines.py": {"case": LAYER, "cell": LAYER},
    "harness/matrix/envs.py": {"packages": "a key of the venv's stamp file"},
    "harness/matrix/images.py": {"error": "a key of docker's build log"},
    "harness/matrix/known_issues.py": {"error": "a known issue's outcome (known_issues.toml): any failure"},
    "harness/incell/classify.py": {"failed": "pytest's report outcome, not the report's state"},
    "harness/matrix/__init__.py": {"packages": "a key of matrix.toml's [envs.*] tables",
                          "server_version": "a key of matrix.toml's [releases.*] tables"},
    "harness/models/answers.py": {"cell": "a key of the per-cell answers file"},
    "harness/progress.py": {"cell": "a key of the progress file"},
    "harness/run/progress_view.py": {"cell": LIVE_TABLE, "failed": LIVE_TABLE,
                                 "interrupted": "the word the live view shows for a cell that was stopped"},
    "harness/report/diff.py": {"case": COMPAT_JSON, "cell": COMPAT_JSON},
    "harness/report/timeline.py": {"case": COMPAT_JSON, "cell": COMPAT_JSON},
    "harness/report/results.py": {key: COMPAT_JSON for key in ("case", "cell", "interrupted", "packages",
                                                               "server_version", "verdict")},
    "harness/servers/__init__.py": {"error": "a key of a bounded call's own result dict"},
    "harness/spec.py": {"cell": "a key of the cell spec (spec.json), which the cell runner writes for its workers"},
    "harness/matrix/settings.py": {"workers": "the setting settings.workers (matrix.toml)"},
}


def vocabulary() -> dict[str, str]:
    """Every JUnit property name, verdict, element name and state, by value: the constant's name."""
    from harness.layout import NOT_APPLICABLE_PREFIX, Element, Prop, Verdict
    from harness.states import State

    names = {NOT_APPLICABLE_PREFIX: "layout.NOT_APPLICABLE_PREFIX",
             NOT_APPLICABLE_PREFIX.strip(): "layout.NOT_APPLICABLE_PREFIX.strip()"}
    for home in (Prop, Verdict, Element):
        for attr, value in vars(home).items():
            if not attr.startswith("_") and isinstance(value, str):
                names.setdefault(value, f"{home.__name__}.{attr}")
    for state in State:
        names.setdefault(state.value, f"State.{state.name}")
    return names


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of a module's, classes' and functions' docstring nodes (prose may name a property)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def literals(paths: list[Path], names: dict[str, str], root: Path = ROOT) -> list[tuple[str, int, str]]:
    """(file relative to ``root``, line, value) of each string literal in ``paths`` that is a word of ``names``."""
    found = []
    for path in paths:
        rel = path.relative_to(root).as_posix()
        if rel in HOMES:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        skip = docstrings(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
                    and id(node) not in skip):
                found.append((rel, node.lineno, node.value))
    return sorted(found)


def sources() -> list[Path]:
    return sorted([*HARNESS.rglob("*.py"), *(ROOT / "bench").rglob("*.py")])


def test_no_property_name_or_state_is_written_outside_its_home() -> None:
    names = vocabulary()
    stray = [(f, line, v) for f, line, v in literals(sources(), names) if v not in ALLOWED.get(f, {})]
    assert not stray, "use the constant instead of the literal:\n" + "\n".join(
        f"{f}:{line}: {v!r} is {names[v]}" for f, line, v in stray)


def test_the_allow_list_has_no_stale_entry() -> None:
    seen = {(f, v) for f, _, v in literals(sources(), vocabulary())}
    allowed = {(f, v) for f, values in ALLOWED.items() for v in values}
    assert not allowed - seen, f"allowed but no longer there: {sorted(allowed - seen)}"


def test_a_property_name_written_as_a_literal_is_found(tmp_path: Path) -> None:
    from harness.layout import Prop

    copy = tmp_path / "harness" / "run" / "cell.py"
    copy.parent.mkdir(parents=True)
    source = (HARNESS / "run" / "cell.py").read_text(encoding="utf-8")
    copy.write_text(source + f"\nPROBE = {Prop.KNOWN_ISSUE!r}\n", encoding="utf-8")
    assert literals([HARNESS / "run" / "cell.py"], vocabulary()) == []
    found = literals([copy], vocabulary(), root=tmp_path)
    assert [(f, v) for f, _, v in found] == [("harness/run/cell.py", Prop.KNOWN_ISSUE)]


# -- JUnit XML has one home: harness/junit.py ----------------------------------------------------------
JUNIT_HOME = "harness/junit.py"
XML_LIBRARIES = ("xml.etree", "xml.dom", "junitparser", "lxml")


def library_imports(path: Path, libraries: tuple[str, ...] = XML_LIBRARIES) -> set[str]:
    """The XML libraries (or other ``libraries``) a file imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {lib for lib in libraries for n in names if n == lib or n.startswith(lib + ".")}
    return found


def test_only_harness_junit_imports_an_xml_library() -> None:
    stray = {path.relative_to(ROOT).as_posix(): sorted(library_imports(path)) for path in sources()
             if path.relative_to(ROOT).as_posix() != JUNIT_HOME and library_imports(path)}
    assert not stray, f"read and write JUnit through {JUNIT_HOME}: {stray}"


def test_an_xml_import_is_found(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from xml.etree import ElementTree\n    import junitparser\n", encoding="utf-8")
    assert library_imports(probe) == {"xml.etree", "junitparser"}


def test_harness_junit_is_ground_floor() -> None:
    assert import_graph()["harness.junit"] <= {"harness.layout", "harness.states"}


def test_the_matrix_room_never_imports_pytest() -> None:
    """The model is read where pytest is not installed (the CI plan job, the scheduler's bare Python):
    holding pytest's reports to known issues is the in-cell side's (harness.incell.classify)."""
    stray = sorted(path.relative_to(ROOT).as_posix() for path in (HARNESS / "matrix").rglob("*.py")
                   if library_imports(path, ("pytest", "_pytest")))
    assert not stray, f"the matrix room imports pytest: {stray}"
