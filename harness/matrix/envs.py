"""One virtual environment per (release, Python, model env), made once and reused.

The venv is both the pytest host of the cell and the environment the python backend's models run in
(its ``bin`` goes first on the server's ``PATH``). It holds the release's ``nvidia-pytriton`` wheel,
installed without its dependencies (only its bundled ``tritonserver`` is used, and its numpy pin would
block model environments such as numpy 2), the case requirements and the env's packages.

A stamp file records what was installed; a warm re-run whose stamp matches installs nothing. The venv's
name carries a digest of its inputs, so a change makes a new venv instead of rebuilding one that a
running cell uses, and a lock file keeps parallel cells that share a venv from building it twice. uv
is used when present (cold cells are much cheaper), else ``venv`` + pip. Standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness import PROJECT_ROOT
from harness.compat import KW_ONLY
from harness.errors import HarnessError
from harness.matrix import interpreters

if TYPE_CHECKING:
    from harness.matrix import Cell, Matrix
from harness.matrix.interpreters import Interpreter

ROOT = PROJECT_ROOT
REQUIREMENTS = ROOT / "harness" / "requirements-cell.txt"
ENVDIR_ENV = "TRITON_MATRIX_ENVDIR"
STAMP = ".triton-matrix-stamp"


@dataclass(frozen=True, **KW_ONLY)
class CellEnv:
    """A ready venv: where it is and what was installed into it."""

    path: Path
    interpreter: Interpreter
    packages: dict[str, str]

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


BACKEND_PACKAGES = {"onnxruntime": ("onnx>=1.16",)}  # what a backend's cases need in the cell's venv


def for_cell(matrix: Matrix, cell: Cell) -> CellEnv:
    """The venv a cell applicable here runs in (made once per release x Python x env, then reused): the
    cell runner's and perf's, the same one."""
    interpreter = interpreters.find(cell.python)
    if not isinstance(interpreter, Interpreter):
        raise HarnessError(interpreter.reason, where=cell.id, fix="install that Python")
    release = matrix.release(cell.triton)
    return ensure(release=release.name, pytriton=release.pytriton or "", interpreter=interpreter,
                  packages=matrix.env_packages(cell) + BACKEND_PACKAGES.get(cell.backend, ()), env=cell.env)


def envdir() -> Path:
    return Path(os.environ.get(ENVDIR_ENV) or ROOT / ".nox" / "cells")


def env_name(release: str, python: str, env: str | None) -> str:
    return f"{release}-py{python}" + (f"-{env}" if env else "")


def ensure(
    *,
    release: str,
    pytriton: str,
    interpreter: Interpreter,
    packages: tuple[str, ...] = (),
    env: str | None = None,
    root: Path | None = None,
) -> CellEnv:
    """Return the venv for these inputs, building it only if its stamp differs."""
    wanted = {
        "python": str(interpreter.executable),
        "version": interpreter.version,
        "pytriton": pytriton,
        "packages": list(packages),
        "requirements": REQUIREMENTS.read_text(encoding="utf-8"),
        "bytecode": "compiled at install",  # venvs made before this are made again, compiled
    }
    digest = hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()
    # The digest is part of the name: a venv in use by a running cell is never rebuilt under it.
    path = (root or envdir()) / f"{env_name(release, interpreter.version, env)}-{digest[:10]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_suffix(".lock")):
        stamp = _read_stamp(path)
        if stamp.get("digest") != digest or not (path / "bin" / "python").exists():
            _build(path, interpreter, pytriton, packages)
            stamp = {"digest": digest, "packages": _freeze(path)}
            (path / STAMP).write_text(json.dumps(stamp, indent=1), encoding="utf-8")
    return CellEnv(path=path, interpreter=interpreter, packages=stamp["packages"])


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_stamp(path: Path) -> dict:
    try:
        return json.loads((path / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _uv() -> list[str] | None:
    found = shutil.which("uv")
    if found:
        return [found]
    with contextlib.suppress(ImportError):
        import uv  # type: ignore[import-not-found]

        return [uv.find_uv_bin()]
    return None


def _build(path: Path, interpreter: Interpreter, pytriton: str, packages: tuple[str, ...]) -> None:
    if path.exists():
        shutil.rmtree(path)
    uv = _uv()
    py = str(path / "bin" / "python")
    wheel = f"nvidia-pytriton=={pytriton}"
    if uv:
        _run([*uv, "venv", "--quiet", "--python", str(interpreter.executable), str(path)], path)
        # Compiled at install: where PYTHONDONTWRITEBYTECODE is set (as on CI machines), every stub start
        # and worker would compile numpy and tritonclient from source again, 4x the CPU of an import.
        install = [*uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", py]
    else:
        _run([str(interpreter.executable), "-m", "venv", str(path)], path)
        install = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--compile"]
    _run([*install, "--no-deps", wheel], path)
    _run([*install, "-r", str(REQUIREMENTS), *packages], path)


def _run(cmd: list[str], path: Path) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        lines = [ln for ln in (out.stderr or out.stdout).splitlines() if ln.strip()]
        detail = " | ".join(lines[-3:]) or f"exit code {out.returncode}"
        shutil.rmtree(path, ignore_errors=True)
        raise HarnessError(
            f"installing the cell environment failed: {detail}",
            where=str(path),
            fix="check the release's pytriton version and the env's packages in matrix.toml",
        )


def _freeze(path: Path) -> dict[str, str]:
    """Installed distributions and versions, read from the venv's own metadata."""
    code = "import json, importlib.metadata as m; print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    out = subprocess.run([str(path / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True)
    return dict(sorted(json.loads(out.stdout).items(), key=lambda kv: kv[0].lower()))

