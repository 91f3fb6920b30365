"""What a CI job needs to know of a cell beyond its axes: how long its job may run, and whether it pulls
an image from NGC (so the job logs in to nvcr.io first).

``python -m harness cells --json`` adds these to each cell, so the GitHub Actions workflow derives its
per-cell ``timeout-minutes`` and its NGC login from matrix.toml instead of repeating them.
Standard library only.
"""

from __future__ import annotations

import math
from typing import Any

from harness import processes
from harness.matrix import Cell, Matrix

NGC_REGISTRY = "nvcr.io"
# Minutes a cell's job needs besides the cell's own deadline (settings.cell_timeout), by runner: the
# checkout, the cell's venv (uv downloads and installs its release wheel), or the server image (docker
# pulls a release image of several GB, or builds the offline one), and the upload of its files.
SETUP_MINUTES = {"local": 15, "docker": 30}


def job_minutes(matrix: Matrix, cell: Cell) -> int:
    """The job's time limit: the setup, the cell's deadline, and the time the cell takes to stop after it.

    The cell runner ends what has not finished at ``cell_timeout`` and writes its JUnit file, so the
    job's limit, which cancels the step (losing what was not written), must come later.
    """
    seconds = matrix.settings.cell_timeout + processes.CELL_STOP_GRACE
    return SETUP_MINUTES[cell.runner] + math.ceil(seconds / 60)


def pulls_from_ngc(matrix: Matrix, cell: Cell) -> bool:
    """A docker cell on the release image (``[docker] image = "release"``) whose image is on nvcr.io."""
    if cell.runner != "docker" or matrix.docker.image != "release":
        return False
    image = matrix.release(cell.triton).image or ""
    return image.startswith(NGC_REGISTRY + "/")


def job(matrix: Matrix, cell: Cell) -> dict[str, Any]:
    """The cell as the workflow's matrix takes it: its axes, ``timeout_minutes`` and ``ngc_login``."""
    return {**cell.as_dict(), "timeout_minutes": job_minutes(matrix, cell), "ngc_login": pulls_from_ngc(matrix, cell)}
