"""Shared fixtures: a real cell venv (the 24.10 wheel) and helpers to run the harness as a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.matrix import envs
from harness.matrix import interpreters
from harness import matrix as matrix_mod

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
collect_ignore = ["fixtures"]  # case libraries and model repositories the tests hand to the harness
TEST_MATRIX = FIXTURES / "matrix" / "tests.toml"


def pytest_configure(config: pytest.Config) -> None:
    """Every harness command of the tests (in this process and the ones it starts) uses the tests' own
    matrix unless a test names another: cell ids such as 24.10-python-cpu-py3.11 stay put."""
    os.environ[matrix_mod.MATRIX_ENV] = str(TEST_MATRIX)
RELEASE = "24.10"
PYTHON = "3.11"


def require(condition: bool, reason: str) -> None:
    """Skip with the reason, except in CI, where a missing prerequisite is a failure."""
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run this test: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def interpreter() -> interpreters.Interpreter:
    found = interpreters.find(PYTHON)
    require(isinstance(found, interpreters.Interpreter), getattr(found, "reason", ""))
    return found


@pytest.fixture(scope="session")
def cell_env(interpreter: interpreters.Interpreter) -> envs.CellEnv:
    """The venv of the 24.10 / Python 3.11 cells (shared with nox -s matrix, built once)."""
    release = matrix_mod.load().release(RELEASE)
    return envs.ensure(release=RELEASE, pytriton=release.pytriton or "", interpreter=interpreter,
                       packages=matrix_mod.DEFAULT_ENV_PACKAGES)


def write_spec(folder: Path, cell_id: str, roots: list[Path], reports: Path, matrix: Path = TEST_MATRIX) -> Path:
    """A cell spec as the cell runner writes it (``harness.spec``), for a worker a test starts itself."""
    from harness import spec

    loaded = matrix_mod.load(matrix)
    resolved = spec.resolve(loaded, loaded.cell(cell_id), reports=reports, case_roots=roots)
    return resolved.write(folder / "spec.json")


def run_harness(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
                timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m harness ...`` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, check=False)


def triton_processes(marker: str | None = None) -> set[int]:
    """Live tritonserver and stub processes; with ``marker``, only those whose environment holds
    ``TRITON_MATRIX_TEST=<marker>`` (servers inherit the harness's environment)."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            name = text[text.find("(") + 1: text.rfind(")")]
            state = text[text.rfind(")") + 2:].split()[0]
            if state == "Z" or not (name == "tritonserver" or name.startswith("triton_python")):
                continue
            if marker is not None:
                environ = (stat.parent / "environ").read_bytes().split(b"\0")
                if f"TRITON_MATRIX_TEST={marker}".encode() not in environ:
                    continue
        except OSError:
            continue
        pids.add(int(stat.parent.name))
    return pids


def run_processes(marker: str) -> set[int]:
    """Every live process (but this one) whose environment holds ``TRITON_MATRIX_TEST=<marker>``: the
    nox, scheduler, cell, pytest, server and stub processes of one run."""
    wanted = f"TRITON_MATRIX_TEST={marker}".encode()
    pids = set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        pid = int(environ.parent.name)
        try:
            state = (environ.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if pid != os.getpid() and state != "Z" and wanted in environ.read_bytes().split(b"\0"):
                pids.add(pid)
        except OSError:
            continue
    return pids
