"""triton-matrix sessions.

    nox -s matrix            every cell of matrix.toml (N at a time), then the report
    nox -s <cell id>         one cell, e.g. nox -s 24.10-python-cpu-py3.11
    nox -s report            merge reports/junit/*.xml into reports/compat.{html,md,json} + junit.xml
    nox -s tests             the project's own tests (-- -m fast: the tier that needs no server)

Cells are read from ``$TRITON_MATRIX`` (default ``matrix.toml``) when this file is loaded, so
``nox -l`` lists one session per cell; a broken matrix file only leaves the cell sessions out (and
``nox -s matrix`` says why). ``nox -s matrix -- --help`` shows the matrix options.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox
import nox.command

sys.path.insert(0, str(Path(__file__).resolve().parent))  # nox does not put the noxfile's folder there

from harness import matrix as matrix_mod  # noqa: E402
from harness import processes  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.layout import RUNNER_ENV  # noqa: E402

nox.needs_version = ">=2026.8.17"
nox.options.sessions = ["matrix"]
nox.options.default_venv_backend = "uv|virtualenv"


def _cell_session(cell_id: str):
    def run_cell(session: nox.Session) -> None:
        session.run(sys.executable, "-m", "harness", "cell", cell_id, *session.posargs, external=True,
                    interrupt_timeout=processes.CELL_STOP_GRACE, terminate_timeout=5)

    run_cell.__doc__ = f"Run cell {cell_id}."
    return run_cell


try:
    _CELLS = matrix_mod.load().cells(runner=os.environ.get(RUNNER_ENV) or None)
except HarnessError as _exc:  # only the cell sessions need the matrix; tests and report still work
    print(f"warning: no cell sessions: {_exc}", file=sys.stderr)
    _CELLS = []
for _cell in _CELLS:
    nox.session(name=_cell.id, venv_backend="none", default=False, tags=["cells"])(_cell_session(_cell.id))


@nox.session(reuse_venv=True)
def matrix(session: nox.Session) -> None:
    """Run every selected cell, then write the report; fails on any failure (-- --help: options)."""
    session.install("-r", "harness/requirements-run.txt")
    if "--perf" in session.posargs:  # perf_analyzer for the measurement after the cells
        session.install(*PERF_PACKAGES)
    try:
        session.run("python", "-m", "harness", "run", *session.posargs,
                    interrupt_timeout=processes.NOX_STOP_GRACE, terminate_timeout=5)
    except nox.command.CommandFailed as exc:
        raise SystemExit(exc.return_code or 1) from None  # 1: a failure; 2: bad input, said in one line


@nox.session(reuse_venv=True)
def report(session: nox.Session) -> None:
    """Merge the cells' JUnit files into reports/compat.{html,md,json} and reports/junit.xml (the
    report needs the standard library only: its JUnit goes through harness.junit, ElementTree)."""
    session.run("python", "-m", "harness", "report", *session.posargs)


FAST_TIER_WORKERS = 4
"""The fast tier waits (subprocesses, deadlines, a reaper settling) more than it computes: 4 pytest-xdist
workers even on 2 CPUs. The full tier stays in one process: its real servers must not share the CPUs."""


def _selects_fast_tier(args: list[str]) -> bool:
    return any(a == "-m" and b == "fast" for a, b in zip(args, args[1:]))


@nox.session(reuse_venv=True)
def tests(session: nox.Session) -> None:
    """The project's own tests: against a real tritonserver, real JUnit files, a real Docker engine."""
    session.install("-r", "requirements-dev.txt")
    args = list(session.posargs)
    if _selects_fast_tier(args) and not any(a.startswith(("-n", "--numprocesses")) for a in args):
        args = ["-n", str(FAST_TIER_WORKERS), *args]
    session.run("python", "-m", "pytest", "tests", *args)


@nox.session(reuse_venv=True)
def bench(session: nox.Session) -> None:
    """Speed figures on this machine (prints them, writes reports/bench.json); -- --quick for minutes,
    -- --under-load-only for only states_equal_under_load (idle vs busy loops), -- --help for the rest."""
    session.install("-r", "requirements-dev.txt")
    session.run("python", "bench/run.py", *session.posargs)


PERF_PACKAGES = ("tritonclient[http,grpc]==2.51.0", "nvidia-cuda-runtime-cu12")
"""perf_analyzer comes with tritonclient's manylinux wheel; 2.51.0's runs on glibc 2.36 (later ones need 2.38)
and measures every release (one client for all: only the server changes). It links libcudart.so.12."""


@nox.session(reuse_venv=True)
def perf(session: nox.Session) -> None:
    """Speed and memory of matrix.toml's [perf] models across releases -> reports/perf.json (-- --help).
    Runs alone: start it when no matrix runs (it measures in interleaved rounds, pinned to CPUs)."""
    session.install(*PERF_PACKAGES)
    try:
        session.run("python", "-m", "harness", "perf", *session.posargs,
                    interrupt_timeout=processes.NOX_STOP_GRACE, terminate_timeout=5)
    except nox.command.CommandFailed as exc:
        raise SystemExit(exc.return_code or 1) from None  # 2: what is missing, said in one line
