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
SLOTS_ENV = "TRITON_MATRIX_SLOTS"  # <folder>:<count>: the run's load slots (harness.admission)
# Seconds a stopped cell runner has from the first signal until it is killed (the CI workflow sets it:
# GitHub's runner sends SIGINT, then SIGTERM 7.5 s later); harness.processes.within_stop_budget.
STOP_BUDGET_ENV = "TRITON_MATRIX_STOP_BUDGET"
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
    WORKERS = "workers"  # how many pytest workers ran the cell (harness.run.workers)
    COLLECTED = "collected"  # every case id of the cell's plan, one per line
    INTERRUPTED = "interrupted"  # why the cell stopped before its end
    INTERRUPTED_CASE = "interrupted_case"  # the case in flight when it stopped
    UNFINISHED = "unfinished"  # the state of the cases that never ran (missing, or timeout after cell_timeout)
    # testcase: why this failure is run again once, alone, at the end of its cell (a deadline that
    # expired while the machine was saturated: the evidence, e.g. "load average 9.1 on 2 CPUs; ...")
    RETRY_ALONE = "retry_alone"
    # testcase: the case timed out under load, then passed when run again alone (the first attempt's
    # evidence): the report shows it flaky
    PASSED_ALONE = "passed_alone"
    # testcase: the first failure of an attempt of this case ("call: AssertionError: …"), kept on the
    # item, so that a case that passed when re-run (flaky) says what failed first
    FIRST_FAILURE = "first_failure"
    # Written by harness.incell.classify in the cell: testcase properties (the last, a suite property).
    KNOWN_ISSUE = "known_issue"  # the failure is this declared known issue (its id)
    KNOWN_ISSUE_REASON = "known_issue_reason"
    KNOWN_ISSUE_LINK = "known_issue_link"
    KNOWN_ISSUE_ABSENT = "known_issue_absent"  # the case passed where this issue is declared
    SKIPPED_BY_ERROR = "skipped_by_error"  # a skip raised while handling an exception: an error
    KNOWN_ISSUE_DECLARED = "known_issue_declared"  # suite: JSON of one issue that applies to the cell


class Verdict:
    """Values of :attr:`Prop.VERDICT`: failures the harness itself diagnosed."""

    TIMEOUT = "timeout"  # the case ran past its deadline; the watchdog ended what it waited on
    SERVER_DIED = "server-died"  # the server ended during the case
    INTERRUPTED = "interrupted"  # the run was stopped while this case ran
    WORKER_DIED = "worker-died"  # the worker running this case died (SIGKILL, a segfault, INTERNALERROR)


class Element:
    """The elements of a JUnit file, as pytest's writer writes them. A testcase's result is its first
    failure, error or skipped element (none: it passed)."""

    TESTSUITES = "testsuites"
    TESTSUITE = "testsuite"
    TESTCASE = "testcase"
    PROPERTIES = "properties"
    PROPERTY = "property"
    SYSTEM_OUT = "system-out"
    SYSTEM_ERR = "system-err"
    FAILURE = "failure"  # the call failed
    ERROR = "error"  # setup or teardown failed
    SKIPPED = "skipped"  # skipped, or xfail


def junit_path(reports: Path, cell_id: str) -> Path:
    return reports / "junit" / f"{cell_id}.xml"


def log_path(reports: Path, cell_id: str) -> Path:
    """The cell's server log: its workers' logs joined when the cell ends (``harness.run.cell``)."""
    return reports / "logs" / f"{cell_id}.log"


def worker_log_path(reports: Path, cell_id: str, worker: int) -> Path:
    """The log of a worker's server while the cell runs (``harness.run.workers``)."""
    return reports / "logs" / f"{cell_id}.w{worker}.log"


def extra_log_path(reports: Path, cell_id: str, n: int, worker: int = 0) -> Path:
    """The log of the n-th extra server a case of a worker started (``triton_factory``)."""
    return reports / "logs" / f"{cell_id}.w{worker}.{n}.log"


def cell_logs(reports: Path, cell_id: str) -> list[Path]:
    """Every server log of a cell's last run (the cell's, its workers', their extra servers')."""
    pattern = re.compile(re.escape(cell_id) + r"(\.w\d+)?(\.\d+)?\.log")
    logs = reports / "logs"
    return sorted(p for p in logs.glob(f"{cell_id}.*log") if pattern.fullmatch(p.name)) if logs.is_dir() else []


def workers_dir(reports: Path, cell_id: str) -> Path:
    """What a cell's workers write while it runs (their JUnit files, the claims); a new run clears it."""
    return reports / "workers" / cell_id


def spec_path(reports: Path, cell_id: str) -> Path:
    """The cell spec the cell runner writes for its workers (``harness.spec``): all they read."""
    return workers_dir(reports, cell_id) / "spec.json"


def worker_junit_path(reports: Path, cell_id: str, worker: int) -> Path:
    """A worker's own JUnit file; the cell runner joins them into :func:`junit_path`."""
    return workers_dir(reports, cell_id) / f"junit-{worker}.xml"


def claims_path(reports: Path, cell_id: str) -> Path:
    """The folder a cell's workers claim case modules in (``harness.incell.sharing``)."""
    return workers_dir(reports, cell_id) / "claims"


def slots_path(reports: Path) -> Path:
    """The folder of a run's load slots (``harness.admission``)."""
    return reports / "workers" / ".slots"


def followup_claims_path(reports: Path, cell_id: str, worker: int) -> Path:
    """The claims folder of a follow-up worker that runs given cases only (``harness.run.followup``)."""
    return workers_dir(reports, cell_id) / f"claims-{worker}"


def leftover_path(reports: Path, cell_id: str, worker: int) -> Path:
    """What a worker that ended abnormally did not finish (``harness.claims.Leftover``)."""
    return workers_dir(reports, cell_id) / f"leftover-{worker}.json"


def progress_dir(reports: Path, cell_id: str) -> Path:
    """A cell's progress files, one per worker (``harness.progress.read_cell`` adds them up)."""
    return reports / "progress" / cell_id


def progress_path(reports: Path, cell_id: str, worker: int = 0) -> Path:
    """A worker's progress file."""
    return progress_dir(reports, cell_id) / f"{worker}.json"


def perf_path(reports: Path) -> Path:
    """``nox -s perf``'s results (harness.perf.runner writes, the report reads)."""
    return reports / "perf.json"


def perf_workdir(reports: Path) -> Path:
    """perf's servers' repositories, logs and perf_analyzer's CSV files."""
    return reports / "perf"
