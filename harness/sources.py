"""The case library's Python files compile: a syntax error is said before any cell starts.

pytest would find it only while collecting, inside every cell's workers, after the venvs are made and
the servers are ready to start. Compiling (never importing: importing runs the team's code in this
process) the case files and conftest.py files costs milliseconds and names the file, line and column.
An import that fails in a cell's venv or Python is left to the cell: it is a result there.

Standard library only: the cell runner (``harness.run.cell``) uses it.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from harness.errors import HarnessError

CONFTEST = "conftest.py"
CASE_FILE_PATTERNS = ("test_*.py", "*_test.py")  # pytest's default python_files


class CaseSyntaxError(HarnessError):
    """A case file or conftest.py of a case library does not compile."""


def case_files(folder: Path) -> list[Path]:
    """The case modules below ``folder``, as pytest would collect them (its default file patterns)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        found += [Path(dirpath) / f for f in sorted(filenames)
                  if any(fnmatch.fnmatch(f, p) for p in CASE_FILE_PATTERNS)]
    return found


def conftest_files(folder: Path) -> list[Path]:
    """The conftest.py files below ``folder``, in the folders pytest would collect."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        if CONFTEST in filenames:
            found.append(Path(dirpath) / CONFTEST)
    return found


def python_files(roots: list[Path]) -> list[Path]:
    """What pytest imports of the case libraries: their conftest.py files and case files."""
    return [f for root in roots for f in (*conftest_files(root), *case_files(root))]


def check(roots: list[Path]) -> None:
    """Compile every case file and conftest.py of ``roots``; the first that does not compile is a
    :class:`CaseSyntaxError` naming its file, line and column."""
    for path in python_files(roots):
        compile_file(path)


def compile_file(path: Path) -> None:
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise HarnessError(f"cannot read the case file ({exc.strerror})", where=str(path),
                           fix="make it readable, or remove it") from None
    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise CaseSyntaxError(f"{type(exc).__name__}: {exc.msg}", where=_place(path, exc),
                              fix="fix the file: pytest cannot import it (it was compiled, not run)") from None
    except ValueError as exc:  # a null byte, before Python 3.12
        raise CaseSyntaxError(f"SyntaxError: {exc}", where=str(path),
                              fix="fix the file: pytest cannot import it (it was compiled, not run)") from None


def _place(path: Path, exc: SyntaxError) -> str:
    """``file:line:column`` as editors and compilers write it (what of it Python knows)."""
    return ":".join([str(path), *(str(n) for n in (exc.lineno, exc.offset) if n)]) if exc.lineno else str(path)
