"""Names that one module writes and another reads: the reports folder's layout and the JUnit vocabulary.

The cell runner and the pytest plugin write them; the report, the scheduler and the tests read them.
Standard library only.
"""

from __future__ import annotations

import re
from pathlib import Path

CELL_CASE = "<cell>"  # the testcase of a cell-level outcome (not applicable, or could not run)
NOT_APPLICABLE_PREFIX = "not-applicable: "  # skip reasons that mean "this cell lacks what the case needs"
PLAN_FILE = "plan.json"
RUNNER_ENV = "TRITON_MATRIX_RUNNER"  # nox -l: the runner the cell sessions are named for
# pytest-timeout's own failure, or a client request that ran past its timeout (read from a JUnit
# failure message where no verdict says so).
TIMEOUT_RE = re.compile(r"^Failed: Timeout \(?>|\btimed out\b|Deadline Exceeded", re.IGNORECASE)


class Prop:
    """JUnit property names (suite level unless said)."""

    CELL = "cell"
    CASE = "case"  # testcase: the case id, relative to its case library
    VERDICT = "verdict"  # testcase: how the harness judged a failure (a Verdict value)
    EXPECTED_SERVER_VERSION = "expected_server_version"
    SERVER_VERSION = "server_version"
    SERVER_BACKENDS = "server_backends"
    SERVER_START_S = "server_start_s"
    SERVER_STOP_S = "server_stop_s"
    SERVER_RESTARTS = "server_restarts"
    PACKAGES = "packages"
    SETUP_S = "setup_s"
    COLLECTED = "collected"  # every case id of the cell's plan, one per line
    INTERRUPTED = "interrupted"  # why the cell stopped before its end
    INTERRUPTED_CASE = "interrupted_case"  # the case in flight when it stopped
    UNFINISHED = "unfinished"  # the state of the cases that never ran (missing, or timeout after cell_timeout)


class Verdict:
    """Values of :attr:`Prop.VERDICT`: failures the harness itself diagnosed."""

    TIMEOUT = "timeout"  # the case ran past its deadline; the watchdog ended what it waited on
    SERVER_DIED = "server-died"  # the server ended during the case
    INTERRUPTED = "interrupted"  # the run was stopped while this case ran


def junit_path(reports: Path, cell_id: str) -> Path:
    return reports / "junit" / f"{cell_id}.xml"


def log_path(reports: Path, cell_id: str) -> Path:
    return reports / "logs" / f"{cell_id}.log"


def extra_log_path(reports: Path, cell_id: str, n: int) -> Path:
    """The log of the n-th extra server a case started (``triton_factory``)."""
    return reports / "logs" / f"{cell_id}.{n}.log"


def progress_path(reports: Path, cell_id: str) -> Path:
    return reports / "progress" / f"{cell_id}.json"
