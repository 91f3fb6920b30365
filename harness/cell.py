"""Run one cell: decide whether it applies, build its venv, run pytest with the plugin in it.

This is what ``nox -s <cell id>`` and ``python -m harness cell <cell id>`` do. It is standard library
only, so it runs under whatever Python runs nox. Whatever happens, the cell ends with a JUnit file
in ``reports/junit/<cell>.xml``: pytest's own, or one written here that says why the cell did not
apply (not-applicable) or could not run (error), so the report never silently loses a cell.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from harness import envs, interpreters, layout, processes, repository, workers
from harness.errors import HarnessError
from harness.layout import CELL_CASE, NOT_APPLICABLE_PREFIX, Prop
from harness.matrix import Cell, Matrix
from harness.models import answers as models_answers
from harness.models import cli as models_cli
from harness.supervise import NOT_RERUN

ROOT = Path(__file__).resolve().parent.parent
BUILTIN_CASES = ROOT / "cases"
# What a backend's cells need in their venv to generate their models at render time.
BACKEND_PACKAGES = {"onnxruntime": ("onnx>=1.16",)}


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


def write_status(reports: Path, cell: Cell, state: str, message: str) -> Path:
    """A JUnit file with one cell-level testcase: ``not-applicable`` (skipped) or ``error``."""
    path = junit_path(reports, cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name=cell.id, tests="1",
                          errors="1" if state == "error" else "0", skipped="1" if state != "error" else "0",
                          failures="0")
    props = ET.SubElement(suite, "properties")
    for key, value in cell.as_dict().items():
        if key != "gpu":
            ET.SubElement(props, "property", name=Prop.CELL if key == "id" else key, value=value or "")
    case = ET.SubElement(suite, "testcase", classname="triton-matrix", name=CELL_CASE, time="0")
    if state == "error":
        ET.SubElement(case, "error", message=message).text = message
    else:
        ET.SubElement(case, "skipped", type="pytest.skip", message=NOT_APPLICABLE_PREFIX + message).text = message
    tmp = path.with_suffix(".xml.tmp")
    ET.ElementTree(suites).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)
    return path


def pytest_command(
    python: Path, matrix: Matrix, cell: Cell, roots: list[Path], reports: Path, options: list[str],
    share: workers.Share, models: list[Path] = (), serial_loads: bool = False,
) -> list[str]:
    """One worker's pytest: the cell's plugin, its share of the case files, its own JUnit file."""
    return [
        str(python), "-m", "pytest",
        "-p", "harness.plugin",
        "-p", "no:cacheprovider",
        f"--cell={cell.id}",
        f"--matrix={matrix.path.resolve()}",
        f"--reports={reports}",
        f"--worker={share.worker}",
        f"--claims={layout.claims_path(reports, cell.id)}",
        *(["--serial-loads"] if serial_loads else []),
        *[f"--case-root={r}" for r in roots],
        f"--junitxml={layout.worker_junit_path(reports, cell.id, share.worker)}",
        "-o", f"junit_suite_name={cell.id}",
        "-o", "junit_family=xunit1",
        "-o", "junit_logging=all",
        "-o", "junit_log_passing_tests=false",
        # The watchdog keeps each case's deadline; pytest-timeout (set per case by the plugin) is the
        # fallback for a case blocked in plain Python. Re-running a timeout or a crash only costs time.
        "--reruns=1",
        f"--rerun-except=^({'|'.join(kind.__name__ for kind in NOT_RERUN)}):",
        f"--rootdir={rootdir(roots)}",
        "-q", "-rfEs",
        *options,
        # models mode: the team's repositories (harness/models/), in the worker that runs their checks
        *(models_cli.pytest_options(list(models)) if str(models_cli.CHECKS_MODULE) in share.targets else []),
        *share.targets,
    ]


def rootdir(roots: list[Path]) -> str:
    return os.path.commonpath([str(r) for r in roots] or [str(ROOT)])


def plan_workers(roots: list[Path], extra: list[str], models: list[Path], reports: Path, cell: Cell,
                 count: int) -> tuple[list[str], list[workers.Share]]:
    """pytest's options, and what each worker collects: the case files ``extra`` names, else the
    roots', longest first by the last run's times of this cell and the others (``harness.workers``);
    the first worker also runs models mode's checks."""
    paths = [a for a in extra if not a.startswith("-") and Path(a.split("::")[0]).exists()]
    options = [a for a in extra if a not in paths]
    targets = workers.targets_of(paths or [str(r) for r in roots])
    known = workers.timings(sorted((reports / "junit").glob("*.xml")), Path(rootdir(roots)))
    own = {0: (str(models_cli.CHECKS_MODULE),)} if models else {}
    return options, workers.shares(workers.ordered(targets, known), count, own)


def run(matrix: Matrix, cell: Cell, *, roots: list[Path], reports: Path, extra: list[str] = (),
        models: list[Path] = (), worker_count: int | None = None, serial: bool = False) -> int:
    """Run ``cell``; returns pytest's exit code (0 also for a not-applicable cell).

    ``worker_count``: pytest workers at once (default ``settings.workers``); ``serial``: one worker
    that loads a case's models one by one (what the benchmark compares the default with).
    """
    reports = reports.resolve()
    junit = junit_path(reports, cell)
    repository.check(roots, cell)  # a broken case library fails here, before anything starts or goes
    count = 1 if serial else (worker_count or matrix.settings.workers)
    options, shares = plan_workers(roots, list(extra), list(models), reports, cell, count)
    junit.unlink(missing_ok=True)
    for log in layout.cell_logs(reports, cell.id):
        log.unlink(missing_ok=True)
    shutil.rmtree(layout.workers_dir(reports, cell.id), ignore_errors=True)
    models_answers.path(reports, cell.id).unlink(missing_ok=True)  # models mode: no stale answers
    reason = not_applicable(matrix, cell)
    if reason:
        write_status(reports, cell, "not-applicable", reason)
        print(f"{cell.id}: not applicable: {reason}", file=sys.stderr)
        return 0
    interpreter = interpreters.find(cell.python)
    assert isinstance(interpreter, interpreters.Interpreter)
    release = matrix.release(cell.triton)
    setup_started = time.monotonic()
    try:
        env = envs.ensure(release=release.name, pytriton=release.pytriton or "", interpreter=interpreter,
                          packages=matrix.env_packages(cell) + BACKEND_PACKAGES.get(cell.backend, ()),
                          env=cell.env)
    except HarnessError as exc:
        write_status(reports, cell, "error", str(exc))
        print(f"{cell.id}: error: {exc}", file=sys.stderr)
        return 1
    setup_s = time.monotonic() - setup_started
    if not shares:
        write_status(reports, cell, "error", "no case file to run (is the case library empty?)")
        return 5
    child_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                     PYTHONUNBUFFERED="1")
    started: list[_Worker] = []
    for share in shares:
        cmd = pytest_command(env.python, matrix, cell, roots, reports, options, share, list(models), serial)
        proc = processes.spawn(cmd, env=child_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started.append(_Worker(share, proc, prefix=f"[w{share.worker}] " if len(shares) > 1 else ""))

    def forward(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough; the scheduler may signal again
        for w in started:
            if w.proc.poll() is None:
                w.proc.send_signal(signum)
        raise KeyboardInterrupt(f"interrupted by {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, forward)
    timed_out = False
    signalled = ""  # the signal that stopped the cell: only then is it interrupted
    try:
        try:
            deadline = time.monotonic() + matrix.settings.cell_timeout
            for w in started:
                w.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True  # pytest stops its server and writes the JUnit file of what finished
            _stop(started)
    except KeyboardInterrupt as exc:
        signalled = str(exc) or "Ctrl-C"
        _stop(started)  # the signal reached pytest too: time to stop its server and write its JUnit
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        for w in started:
            w.reader.join(5)
        code = workers.exit_code([w.proc.poll() for w in started])
        parts = [(layout.worker_junit_path(reports, cell.id, w.share.worker), w.missing_junit(reports, cell))
                 for w in started]
        ran = workers.join_junit(parts, junit, cell.id) if any(why is None for _, why in parts) else None
        last_error = next((w.errors[-1] for w in started if w.errors), "")
        if ran is None or (code not in (0, 1) and ran == 0):
            what = "before writing its JUnit file" if ran is None else "without running a case"
            if code == 5:
                what = "with no case collected (is the case library empty?)"
            reason = f"pytest exited with code {code_name(code)} {what}"
            write_status(reports, cell, "error", f"{reason}: {last_error}" if last_error else reason)
        elif timed_out:  # what finished is kept; what did not is a timeout, not missing
            add_properties(junit, {Prop.INTERRUPTED: f"the cell ran past its {matrix.settings.cell_timeout:g} s "
                                                      "deadline (settings.cell_timeout)",
                                   Prop.UNFINISHED: "timeout"})
        elif signalled and not _is_marked(junit):  # interrupted: keep what ran, say it did not finish
            add_properties(junit, {Prop.INTERRUPTED: f"pytest was interrupted ({signalled})"})
        if junit.exists():
            add_properties(junit, {Prop.SETUP_S: f"{setup_s:.3f}", Prop.WORKERS: str(len(started))})
        join_logs(reports, cell.id, len(started))  # last: the JUnit file comes first, whatever happens here
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


class _Worker:
    """One running pytest worker of the cell, its output copied through with a prefix."""

    def __init__(self, share: workers.Share, proc: subprocess.Popen[bytes], prefix: str) -> None:
        self.share = share
        self.proc = proc
        self.errors: list[str] = []
        self.reader = threading.Thread(target=_copy_output, args=(proc, self.errors, prefix), daemon=True)
        self.reader.start()

    def missing_junit(self, reports: Path, cell: Cell) -> str | None:
        """Why this worker's JUnit file is missing (then its cases are an error), or None."""
        if layout.worker_junit_path(reports, cell.id, self.share.worker).exists():
            return None
        code = self.proc.poll()
        why = f"worker {self.share.worker} ended with code {code_name(code)} before writing its JUnit file"
        return f"{why}: {self.errors[-1]}" if self.errors else why


def _stop(started: list[_Worker]) -> None:
    """Every worker at once, bounded: each stops its server and writes the JUnit file of what ran."""
    for w in started:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + processes.PYTEST_STOP_GRACE
    for w in started:
        processes.shutdown(w.proc, grace=max(0.1, deadline - time.monotonic()), first=signal.SIGTERM)


def add_properties(junit: Path, values: dict[str, str]) -> None:
    """Add suite properties to a JUnit file (``interrupted``: the report then says it is partial;
    ``setup_s``: the time the cell's venv took, for the benchmark)."""
    try:
        tree = ET.parse(junit)
    except (ET.ParseError, OSError):
        return
    for suite in tree.getroot().iter("testsuite"):
        props = suite.find("properties")
        if props is None:
            props = ET.Element("properties")
            suite.insert(0, props)
        for name, value in values.items():
            ET.SubElement(props, "property", name=name, value=value)
    tmp = junit.with_suffix(".xml.tmp")
    tree.write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, junit)


def _is_marked(junit: Path) -> bool:
    try:
        return any(p.get("name") == Prop.INTERRUPTED for p in ET.parse(junit).getroot().iter("property"))
    except (ET.ParseError, OSError):
        return False


def _copy_output(proc: subprocess.Popen[bytes], errors: list[str], prefix: str = "") -> None:
    """Copy a worker's output through (each line with its prefix), keeping its error lines for the
    cell's error message."""
    assert proc.stdout is not None
    for raw in proc.stdout:
        sys.stdout.buffer.write(prefix.encode() + raw)
        sys.stdout.flush()
        line = raw.decode("utf-8", "replace").strip()
        if line.startswith(("ERROR:", "INTERNALERROR>", "E   ")):
            errors.append(line)


def code_name(code: int | None) -> str:
    return str(code) if code is not None and code >= 0 else f"{code} ({processes.describe_exit(code)})"
