"""The one option table (harness/options.py): every parser from it, a child's argv rendered from it,
each option declared once, ``--workers``' default resolved once, a bad value one OptionError."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, run_harness
from harness import options
from harness.run import scheduler as run
from harness.matrix import Cell
from harness.matrix.settings import Settings

pytestmark = pytest.mark.fast

# One complete set of non-default values per command: what a user or the scheduler could give.
GIVEN: dict[str, dict[str, Any]] = {
    options.CELLS: {"matrix": "m.toml", "runner": "docker", "cell": ["24.10-*", "*cpu*"], "json": True},
    options.RUN: {"cases": ["builtin", "/lib"], "cell": ["24.10-*"], "runner": "local", "matrix": "/m.toml",
                  "jobs": 3, "reports": "/r", "baseline": "old.json", "verbose": True, "models": ["/team"],
                  "reference": "23.10-python-cpu-py3.11", "workers": 2, "history": "/h", "history_window": 5,
                  "perf": True, "perf_gate": True},
    options.CELL: {"id": "24.10-python-cpu-py3.11-numpy1", "matrix": "/m.toml", "cases": ["/lib"], "reports": "/r",
                   "models": ["/a", "/b"], "workers": 7, "serial": True},
    options.REPORT: {"reports": "/r", "plan": "p.json", "baseline": "b.json", "matrix": "m.toml",
                     "reference": "24.10-python-cpu-py3.11", "history": "/h", "history_window": 5},
    options.PERF: {"matrix": "m.toml", "cell": ["24.07-*", "24.10-*"], "reports": "/r", "perf_gate": True,
                   "cases": ["/lib"]},
}


def values_of(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k not in options.META}


def test_every_command_is_in_the_table() -> None:
    assert {c.name for c in options.COMMANDS} == set(GIVEN)
    for command, given in GIVEN.items():
        assert set(given) == {o.dest for o in options.options_of(command)}, command


@pytest.mark.parametrize("command", sorted(GIVEN))
def test_parse_reads_back_what_to_args_renders(command: str) -> None:
    given = GIVEN[command]
    assert values_of(options.parse([command, *options.to_args(command, given)])) == given
    defaults = values_of(options.parse([command, *([given["id"]] if "id" in given else [])]))
    assert values_of(options.parse([command, *options.to_args(command, defaults)])) == defaults


def test_what_follows_the_double_dash_goes_to_pytest() -> None:
    args = options.parse(["cell", "x", "--workers=2", "--", "-k", "add_sub", "--workers=9"])
    assert (args.workers, args.pytest_args) == (2, ["-k", "add_sub", "--workers=9"])


def test_to_args_refuses_an_option_the_command_does_not_take() -> None:
    with pytest.raises(ValueError, match="jobs"):
        options.to_args(options.CELL, {"id": "x", "jobs": 2})


@pytest.mark.parametrize(("argv", "fragment"), [
    (["run", "--workers=0"], "--workers: must be at least 1, got 0; e.g. --workers 4"),
    (["cell", "x", "--workers", "-3"], "--workers: must be at least 1, got -3"),
    (["run", "--jobs=many"], "--jobs: not a whole number: 'many'; e.g. --jobs 4"),
])
def test_a_bad_value_is_an_option_error(argv: list[str], fragment: str) -> None:
    with pytest.raises(options.OptionError) as raised:
        options.parse(argv)
    assert fragment in str(raised.value)


def test_a_bad_value_is_one_line_and_exit_code_2() -> None:
    done = run_harness("run", "--workers=0")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: --workers: must be at least 1, got 0; e.g. --workers 4"]


def test_each_option_is_declared_once() -> None:
    flags = [o.flag for o in options.OPTIONS]
    assert len(flags) == len(set(flags))
    table = {o.flag for o in options.OPTIONS if not o.positional}
    plugin = {o.flag for o in options.options_of(options.PLUGIN)}  # the worker's --spec, --worker, --claims
    for path in sorted((ROOT / "harness").rglob("*.py")):
        source = path.read_text()
        found = (set(re.findall(r"""add_argument\(\s*["'](--[\w-]+)""", source)) & table
                 | set(re.findall(r"""addoption\(\s*["'](--[\w-]+)""", source)) & plugin)
        assert not found, f"{path.relative_to(ROOT)} declares {sorted(found)}: harness/options.py does"


def test_the_plugin_registers_the_shared_options() -> None:
    seen: dict[str, dict[str, Any]] = {}

    class Group:
        def addoption(self, *names: str, **kwargs: Any) -> None:
            seen[names[-1]] = kwargs

    class Parser:
        def getgroup(self, name: str) -> Group:
            assert name == "triton-matrix"
            return Group()

    options.add_pytest_options(Parser())
    assert set(seen) == {"--spec", "--worker", "--claims"}, "a worker reads its cell spec, no matrix file"
    assert seen["--worker"]["default"] == 0 and seen["--worker"]["type"] is int


def test_the_workers_default_is_resolved_once_from_run_to_the_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler resolves --workers (and --jobs from it); the cell is handed the number and resolves
    nothing: across run -> cell command -> the cell's parse, the resolver runs once."""
    calls: list[int] = []

    def counted(values: Any, context: options.Context) -> int:
        calls.append(1)
        return 3

    monkeypatch.setattr(options, "OPTIONS", tuple(
        o if o.flag != "--workers" else options.Option(**{**vars(o), "resolver": counted}) for o in options.OPTIONS))
    context = options.Context(settings=Settings(workers=9), targets=("a.py", "b.py::t", "b.py::u"))
    resolved = options.resolve(options.RUN, options.parse(["run"]), context)
    assert resolved.workers == 3 and resolved.jobs >= 1
    given = run.RunOptions(reports=Path("/r"), jobs=resolved.jobs,
                           for_cells={"reports": Path("/r"), "workers": resolved.workers, "cases": ["builtin"]})
    cell = Cell(triton="24.10", backend="python", instance_kind="cpu", python="3.11")
    command = run.cell_command(cell, given)
    assert command[3:] == ["cell", cell.id, "--cases=builtin", "--reports=/r", "--workers=3"]
    in_cell = options.resolve(options.CELL, options.parse(command[3:]), options.Context(settings=Settings()))
    assert in_cell.workers == 3
    assert calls == [1]


def test_a_cell_on_its_own_takes_the_matrix_default() -> None:
    resolved = options.resolve(options.CELL, options.parse(["cell", "x"]), options.Context(settings=Settings(workers=5)))
    assert resolved.workers == 5


def test_jobs_follow_the_workers_a_cell_really_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import admission

    monkeypatch.setattr(admission, "server_budget", lambda cpus=None: 12)
    two_files = options.Context(settings=Settings(workers=4), targets=("a.py", "b.py::x", "b.py::y"))
    assert options.resolve(options.RUN, options.parse(["run"]), two_files).jobs == 6  # 2 workers a cell
    assert options.resolve(options.RUN, options.parse(["run", "--workers=1"]), two_files).jobs == 12
    assert options.resolve(options.RUN, options.parse(["run", "--jobs=2"]), two_files).jobs == 2


def test_no_more_workers_than_case_files() -> None:
    assert options.workers_for(["a.py", "b.py::x", "b.py::y"], 4) == 2
    assert options.workers_for(["a.py", "b.py", "c.py"], 2) == 2
    assert options.workers_for([], 4) == 1
