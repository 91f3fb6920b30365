"""Run one cell: decide whether it applies, build its venv, run pytest with the plugin in it.

This is what ``nox -s <cell id>`` and ``python -m harness cell <cell id>`` do. It is standard library
only (its JUnit through ``harness.junit``), so it runs under whatever Python runs nox. Whatever happens,
the cell ends with a JUnit file in ``reports/junit/<cell>.xml``: pytest's own, or one written here that says why the cell did not
apply (not-applicable) or could not run (error), so the report never silently loses a cell.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import PROJECT_ROOT, admission, layout, processes, repository
from harness import spec as cell_spec
from harness.matrix import envs
from harness.matrix import interpreters
from harness.run import pool
from harness import progress
from harness.run import workers
from harness import junit as junit_mod
from harness.errors import HarnessError
from harness.run.followup import RETRY_WHY, replace_dead, retry_alone
from harness.layout import SLOTS_ENV, Prop
from harness.matrix import Cell, Matrix
from harness.models import answers as models_answers
from harness.models import cli as models_cli
from harness.options import workers_for
from harness.run.pool import code_name
from harness.states import State

ROOT = PROJECT_ROOT
BUILTIN_CASES = ROOT / "cases"
# What a backend's cells need in their venv to generate their models at render time.
BACKEND_PACKAGES = envs.BACKEND_PACKAGES


def junit_path(reports: Path, cell: Cell) -> Path:
    return layout.junit_path(reports, cell.id)


def log_path(reports: Path, cell: Cell) -> Path:
    return layout.log_path(reports, cell.id)


def case_roots(specs: list[str] | None) -> list[Path]:
    """``--cases`` values: folders, or ``builtin`` for this repository's ``cases/``."""
    if not specs:
        return [BUILTIN_CASES]
    roots = []
    for spec in specs:
        path = BUILTIN_CASES if spec == "builtin" else Path(spec).resolve()
        if not path.is_dir():
            raise HarnessError("case library not found", where=spec, fix="pass a folder with case areas")
        roots.append(path)
    return roots


def has_gpu() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def not_applicable(matrix: Matrix, cell: Cell) -> str | None:
    """Why the whole cell cannot run on this machine, or None."""
    release = matrix.release(cell.triton)
    if release.pythons and cell.python not in release.pythons:
        return (f"Triton {cell.triton} ships python backend stubs for {', '.join(release.pythons)} only, "
                f"not {cell.python}")
    if cell.gpu and not has_gpu():
        return "no GPU on this machine (nvidia-smi -L lists none); run gpu cells on a GPU runner"
    if cell.runner == "local" and not release.pytriton:
        return f"release {cell.triton} has no pytriton wheel for the local runner; use --runner docker"
    found = interpreters.find(cell.python)
    if isinstance(found, interpreters.Missing):
        return found.reason
    return None


def ensure_env(matrix: Matrix, cell: Cell) -> envs.CellEnv:
    """The venv a cell applicable here runs in (``harness.matrix.envs.for_cell``)."""
    return envs.for_cell(matrix, cell)


def cell_properties(cell: Cell) -> dict[str, str]:
    """The suite properties that say which cell a JUnit suite is of (as the plugin writes them)."""
    return {Prop.CELL if key == "id" else key: value or "" for key, value in cell.as_dict().items() if key != "gpu"}


def write_status(reports: Path, cell: Cell, state: State, message: str) -> Path:
    """The cell's JUnit file as one cell-level testcase (not applicable, or an error): ``harness.junit``."""
    return junit_mod.write_status(junit_path(reports, cell), cell_properties(cell), state, message)


def rootdir(roots: list[Path]) -> str:
    return pool.rootdir(roots, ROOT)


def plan_workers(roots: list[Path], extra: list[str], models: list[Path], reports: Path, cell: Cell,
                 count: int) -> tuple[list[str], list[workers.Share]]:
    """pytest's options, and what each worker collects: the case files ``extra`` names, else the
    roots', longest first by the last run's times of this cell and the others (``harness.run.workers``);
    the first worker also runs models mode's checks. ``count`` workers, no more than case files."""
    paths = [a for a in extra if not a.startswith("-") and Path(a.split("::")[0]).exists()]
    options = [a for a in extra if a not in paths]
    targets = workers.targets_of(paths or [str(r) for r in roots])
    known = workers.timings(sorted((reports / "junit").glob("*.xml")), Path(rootdir(roots)))
    own = {0: (str(models_cli.CHECKS_MODULE),)} if models else {}
    return options, workers.shares(workers.ordered(targets, known), workers_for(targets, count), own)


def run(matrix: Matrix, cell: Cell, *, roots: list[Path], reports: Path, extra: list[str] = (),
        models: list[Path] = (), worker_count: int, serial: bool = False) -> int:
    """Run ``cell``; returns pytest's exit code (0 also for a not-applicable cell).

    ``worker_count``: pytest workers at once, resolved by the caller (``harness.options``: the cell
    computes no default); ``serial``: one worker that loads a case's models one by one (what the
    benchmark compares the default with).
    """
    reports = reports.resolve()
    junit = junit_path(reports, cell)
    repository.check(roots, cell)  # a broken case library fails here, before anything starts or goes
    options, shares = plan_workers(roots, list(extra), list(models), reports, cell, 1 if serial else worker_count)
    junit.unlink(missing_ok=True)
    for log in layout.cell_logs(reports, cell.id):
        log.unlink(missing_ok=True)
    shutil.rmtree(layout.workers_dir(reports, cell.id), ignore_errors=True)
    progress.clear_cell(reports, cell.id)  # a worker index of the last run (a follow-up) would count again
    models_answers.path(reports, cell.id).unlink(missing_ok=True)  # models mode: no stale answers
    reason = not_applicable(matrix, cell)
    if reason:
        write_status(reports, cell, State.NOT_APPLICABLE, reason)
        print(f"{cell.id}: not applicable: {reason}", file=sys.stderr)
        return 0
    setup_started = time.monotonic()
    try:
        env = ensure_env(matrix, cell)
    except HarnessError as exc:
        write_status(reports, cell, State.ERROR, str(exc))
        print(f"{cell.id}: error: {exc}", file=sys.stderr)
        return 1
    setup_s = time.monotonic() - setup_started
    if not shares:
        write_status(reports, cell, State.ERROR, "no case file to run (is the case library empty?)")
        return 5
    child_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                     PYTHONUNBUFFERED="1")
    if admission.Slots.from_env() is None:  # a cell run on its own bounds its own loads
        child_env[SLOTS_ENV] = admission.Slots.create(layout.workers_dir(reports, cell.id) / "slots").env_value()
    # The one resolved spec every worker reads (harness.spec): no worker opens matrix.toml again.
    spec = cell_spec.resolve(matrix, cell, reports=reports, case_roots=roots, shares=shares, models=models,
                             serial_loads=serial)
    launch = pool.Launch(python=env.python, spec=spec, spec_path=spec.write(layout.spec_path(reports, cell.id)),
                         options=tuple(options), cwd=ROOT, env=child_env)
    running = pool.Pool(launch, prefixed=spec.workers > 1)

    def forward(signum: int, frame: object) -> None:
        """The first stop signal ends the workers' run and this loop. Ctrl-C reaches this process twice
        (from the terminal, then from the scheduler): a second KeyboardInterrupt would break off the
        wrap-up below, and the cell's JUnit file would not say it was interrupted."""
        for handled in previous:
            signal.signal(handled, signal.SIG_IGN)
        running.signal(signum)
        raise KeyboardInterrupt(f"interrupted by {signal.Signals(signum).name}")

    timed_out = False
    counted: dict[int, int] = {}  # worker -> the exit code it counts as, where a follow-up changed its results
    deadline = time.monotonic() + spec.settings.cell_timeout
    signalled = ""  # the signal that stopped the cell: only then is it interrupted
    stops = [signal.SIGTERM, *([signal.SIGINT] if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN else [])]
    previous = {handled: signal.signal(handled, forward) for handled in stops}
    try:
        try:
            for share in spec.shares:
                running.start(share.targets, layout.claims_path(reports, cell.id))
            replace_dead(running, reports, cell_properties(cell), deadline, counted)
            retry_alone(running, reports, cell.id, deadline, counted)
        except subprocess.TimeoutExpired:
            timed_out = True  # pytest stops its server and writes the JUnit file of what finished
            running.stop()
    except KeyboardInterrupt as exc:
        signalled = str(exc) or "Ctrl-C"
        # Time for pytest to stop its server and write its JUnit, within what the parent allows (CI).
        running.stop(processes.within_stop_budget(processes.PYTEST_STOP_GRACE))
        raise
    finally:
        running.join_readers(1.0 if signalled else 5.0)
        running.end_orphans()
        joined = [w for w in running.workers if w.followup != RETRY_WHY]
        code = workers.exit_code([counted.get(w.index, w.code) for w in joined])
        parts = [(w.junit(reports, cell.id), w.missing_junit(reports, cell.id)) for w in joined]
        ran = junit_mod.join(parts, junit, cell.id) if any(why is None for _, why in parts) else None
        last_error = next((w.last_error for w in joined if w.last_error), "")
        if signalled and not ran:  # stopped before any case ran: its cases are not run, not an error
            junit_mod.write_suite(junit, cell.id, {**cell_properties(cell), Prop.INTERRUPTED:
                                                   f"pytest was interrupted ({signalled}) before it ran a case"}.items(), [])
        elif ran is None or (code not in (0, 1) and ran == 0):
            what = "before writing its JUnit file" if ran is None else "without running a case"
            if code == 5:
                what = "with no case collected (is the case library empty?)"
            reason = f"pytest exited with code {code_name(code)} {what}"
            write_status(reports, cell, State.ERROR, f"{reason}: {last_error}" if last_error else reason)
        elif timed_out:  # what finished is kept; what did not is a timeout, not missing
            junit_mod.add_properties(junit, {Prop.INTERRUPTED: f"the cell ran past its {spec.settings.cell_timeout:g} "
                                                          "s deadline (settings.cell_timeout)",
                                             Prop.UNFINISHED: State.TIMEOUT.value})
        elif signalled and not junit_mod.has_property(junit, Prop.INTERRUPTED):  # keep what ran, say it stopped
            junit_mod.add_properties(junit, {Prop.INTERRUPTED: f"pytest was interrupted ({signalled})"})
        if junit.exists():
            junit_mod.add_properties(junit, {Prop.SETUP_S: f"{setup_s:.3f}", Prop.WORKERS: str(len(running.workers))})
        join_logs(reports, cell.id, len(running.workers))  # last: the JUnit file comes first, whatever happens
        for handled, handler in previous.items():  # only now: a late second signal cannot break off the above
            signal.signal(handled, handler)
    if code not in (0, 1):
        print(f"{cell.id}: pytest exited with code {code_name(code)}", file=sys.stderr)
    return code


def join_logs(reports: Path, cell_id: str, count: int) -> None:
    """The workers' server logs become the cell's one log, each under a line naming its worker."""
    parts = {k: layout.worker_log_path(reports, cell_id, k) for k in range(count)}
    parts = {k: part for k, part in parts.items() if part.exists()}
    if not parts:
        return
    with open(layout.log_path(reports, cell_id), "wb") as out:
        for k, part in parts.items():
            if count > 1:
                out.write(f"==== worker {k}'s server ====\n".encode())
            with open(part, "rb") as fh:
                shutil.copyfileobj(fh, out)
            part.unlink()
