"""Models mode on the command line: which repositories, checked up front, and the cell's pytest arguments.

Standard library only (``python -m harness cell`` and ``nox -s matrix`` run it): a repository that is
not one, a broken samples.json or samples that do not fit the config stop the run with one line and
exit code 2 before any cell starts.
"""

from __future__ import annotations

from pathlib import Path

from harness.matrix import Matrix
from harness.models import repo

CHECKS_MODULE = Path(__file__).resolve().parent / "checks.py"
PLUGIN = "harness.models.plugin"


def repositories(given: list[str], matrix: Matrix) -> list[Path]:
    """``--models`` folders, else matrix.toml's ``models``; each checked (a HarnessError names the problem)."""
    dirs = [Path(d).resolve() for d in given] or [Path(d).resolve() for d in matrix.models]
    if dirs:
        repo.discover(dirs)
    return dirs


def pytest_options(dirs: list[Path]) -> list[str]:
    """What the pytest worker that runs :data:`CHECKS_MODULE` needs for models mode: the plugin (the
    repositories themselves are in the cell spec, ``harness.spec``)."""
    return ["-p", PLUGIN] if dirs else []
