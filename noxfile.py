"""triton-matrix sessions.

    nox -s matrix            every cell of matrix.toml (in parallel), then the report
    nox -s <cell id>         one cell, e.g. nox -s 24.10-python-cpu-py3.11
    nox -s report            merge reports/junit/*.xml into reports/compat.{html,md,json} + junit.xml
    nox -s tests             the project's own tests

Cells are read from ``$TRITON_MATRIX`` (default ``matrix.toml``) when this file is loaded, so
``nox -l`` lists one session per cell. ``nox -s matrix -- --help`` shows the matrix options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).resolve().parent))  # nox does not put the noxfile's folder there

from harness import matrix as matrix_mod  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.models import cli as models_cli  # noqa: E402

nox.needs_version = ">=2026.8.17"  # --parallel
nox.options.sessions = ["matrix"]
nox.options.default_venv_backend = "uv|virtualenv"

ROOT = Path(__file__).resolve().parent
RUNNER_ENV = "TRITON_MATRIX_RUNNER"

try:
    MATRIX = matrix_mod.load()
    CELLS = MATRIX.cells(runner=os.environ.get(RUNNER_ENV) or None)
except HarnessError as exc:
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None


def _cell_session(cell_id: str):
    def run_cell(session: nox.Session) -> None:
        session.run(sys.executable, "-m", "harness", "cell", cell_id, *session.posargs,
                    external=True, interrupt_timeout=30, terminate_timeout=10)

    run_cell.__doc__ = f"Run cell {cell_id}."
    return run_cell


for _cell in CELLS:
    nox.session(name=_cell.id, venv_backend="none", default=False, allow_parallel=True, tags=["cells"])(
        _cell_session(_cell.id)
    )


def _matrix_args(posargs: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nox -s matrix --", description="Run the matrix, then the report.")
    parser.add_argument("--cases", action="append", default=[],
                        help="a case library folder (repeatable); 'builtin' adds this repository's cases/")
    parser.add_argument("--cell", action="append", default=[], help="only cells whose id matches (glob)")
    parser.add_argument("--runner", help="run every cell with this runner (local, docker)")
    parser.add_argument("--matrix", help="another matrix file")
    parser.add_argument("--jobs", default=str(os.cpu_count() or 1), help="cells at once (default: CPUs)")
    parser.add_argument("--reports", default="reports")
    parser.add_argument("--models", action="append", default=[],
                        help="a Triton model repository to load, ask and compare on every cell (repeatable)")
    parser.add_argument("--reference", help="models mode: the cell whose answers the others must match")
    return parser.parse_args(posargs)


@nox.session(venv_backend="none")
def matrix(session: nox.Session) -> None:
    """Run every selected cell (nox --parallel), then write the report; fails on any failure."""
    args = _matrix_args(session.posargs)
    env = {}
    if args.matrix:
        env[matrix_mod.MATRIX_ENV] = str(Path(args.matrix).resolve())
    if args.runner:
        env[RUNNER_ENV] = args.runner
    try:
        chosen = matrix_mod.load(args.matrix).select(args.cell, runner=args.runner)
        models = models_cli.repositories(args.models, matrix_mod.load(args.matrix))  # models mode, checked now
        if args.reference:
            matrix_mod.load(args.matrix).cell(args.reference)
    except HarnessError as exc:  # bad input: one line, exit code 2, nothing started or written
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    reports = Path(args.reports).resolve()
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "plan.json").write_text(json.dumps({"cells": [c.as_dict() for c in chosen]}, indent=1))
    cell_args = [f"--reports={reports}", *[f"--cases={c}" for c in args.cases], *[f"--models={m}" for m in models]]
    session.log(f"{len(chosen)} cells, {args.jobs} at a time: {' '.join(c.id for c in chosen)}")
    report_args = [f"--reports={reports}", *([f"--matrix={Path(args.matrix).resolve()}"] if args.matrix else []),
                   *([f"--reference={args.reference}"] if args.reference else [])]
    nox_cmd = [sys.executable, "-m", "nox", "--noxfile", str(ROOT / "noxfile.py")]
    try:
        code = _run_forwarding_signals(
            [*nox_cmd, "--parallel", args.jobs, "-s", *[c.id for c in chosen], "--", *cell_args], env)
        if code not in (0, 1):
            session.warn(f"the cells' nox exited with code {code}")
    finally:
        # Always write the report, also after Ctrl-C or SIGTERM: it says partial when cells are missing.
        session.run(*nox_cmd, "-s", "report", "--", *report_args, external=True)


def _run_forwarding_signals(cmd: list[str], env: dict[str, str]) -> int:
    """Run ``cmd``; Ctrl-C or SIGTERM is passed on as SIGINT and waited for (bounded), then re-raised.

    nox's own run() would only wait for a child to notice the terminal's Ctrl-C; a SIGTERM sent to
    this process alone (a CI job cancelled) would leave the cells running.
    """
    # Its own process group, so that SIGINT reaches every process of it (nox, and with --jobs 1 the
    # cell and its pytest as well); SIGINT restored, where this process was started with it ignored
    # (a background job of a non-interactive shell).
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


@nox.session(reuse_venv=True)
def report(session: nox.Session) -> None:
    """Merge the cells' JUnit files into reports/compat.{html,md,json} and reports/junit.xml."""
    session.install("-r", "harness/requirements-report.txt")
    session.run("python", "-m", "harness", "report", *session.posargs)


@nox.session(reuse_venv=True)
def tests(session: nox.Session) -> None:
    """The project's own tests: against a real tritonserver, real JUnit files, a real Docker engine."""
    session.install("-r", "requirements-dev.txt")
    session.run("python", "-m", "pytest", "tests", *session.posargs)


@nox.session(reuse_venv=True)
def bench(session: nox.Session) -> None:
    """Speed figures on this machine (prints them, writes reports/bench.json); -- --quick for minutes."""
    session.install("-r", "requirements-dev.txt")
    session.run("python", "bench/run.py", *session.posargs)
