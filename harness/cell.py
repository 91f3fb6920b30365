"""Run one cell: decide whether it applies, build its venv, run pytest with the plugin in it.

This is what ``nox -s <cell id>`` and ``python -m harness cell <cell id>`` do. It is standard library
only, so it runs under whatever Python runs nox. Whatever happens, the cell ends with a JUnit file
in ``reports/junit/<cell>.xml``: pytest's own, or one written here that says why the cell did not
apply (not-applicable) or could not run (error), so the report never silently loses a cell.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from harness import envs, interpreters, repository
from harness.errors import HarnessError
from harness.matrix import Cell, Matrix

ROOT = Path(__file__).resolve().parent.parent
BUILTIN_CASES = ROOT / "cases"
CELL_CASE = "<cell>"
# What a backend's cells need in their venv to generate their models at render time.
BACKEND_PACKAGES = {"onnxruntime": ("onnx>=1.16",)}  # testcase name of a cell-level outcome written by this module


def junit_path(reports: Path, cell: Cell) -> Path:
    return reports / "junit" / f"{cell.id}.xml"


def log_path(reports: Path, cell: Cell) -> Path:
    return reports / "logs" / f"{cell.id}.log"


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
            ET.SubElement(props, "property", name="cell" if key == "id" else key, value=value or "")
    case = ET.SubElement(suite, "testcase", classname="triton-matrix", name=CELL_CASE, time="0")
    if state == "error":
        ET.SubElement(case, "error", message=message).text = message
    else:
        ET.SubElement(case, "skipped", type="pytest.skip", message=f"not-applicable: {message}").text = message
    tmp = path.with_suffix(".xml.tmp")
    ET.ElementTree(suites).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)
    return path


def pytest_command(
    python: Path, matrix: Matrix, cell: Cell, roots: list[Path], reports: Path, extra: list[str]
) -> list[str]:
    return [
        str(python), "-m", "pytest",
        "-p", "harness.plugin",
        "-p", "no:cacheprovider",
        f"--cell={cell.id}",
        f"--matrix={matrix.path.resolve()}",
        f"--reports={reports}",
        *[f"--case-root={r}" for r in roots],
        f"--junitxml={junit_path(reports, cell)}",
        "-o", f"junit_suite_name={cell.id}",
        "-o", "junit_family=xunit1",
        "-o", "junit_logging=all",
        "-o", "junit_log_passing_tests=false",
        f"--timeout={matrix.settings['case_timeout']:g}",
        "--reruns=1",
        f"--rootdir={os.path.commonpath([str(r) for r in roots])}",
        "-q", "-rfEs",
        *extra,
        *([] if _names_paths(extra) else [str(r) for r in roots]),
    ]


def _names_paths(args: list[str]) -> bool:
    """Whether extra pytest arguments already select case files (then the roots are not added)."""
    return any(not a.startswith("-") and Path(a.split("::")[0]).exists() for a in args)


def run(matrix: Matrix, cell: Cell, *, roots: list[Path], reports: Path, extra: list[str] = ()) -> int:
    """Run ``cell``; returns pytest's exit code (0 also for a not-applicable cell)."""
    reports = reports.resolve()
    junit = junit_path(reports, cell)
    repository.check(roots, cell)  # a broken case library fails here, before anything starts or goes
    junit.unlink(missing_ok=True)
    log_path(reports, cell).unlink(missing_ok=True)
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
    cmd = pytest_command(env.python, matrix, cell, roots, reports, list(extra))
    child_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                     PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, env=child_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=_terminate_with_parent)  # noqa: PLW1509 - only prctl
    errors: list[str] = []
    reader = threading.Thread(target=_copy_output, args=(proc, errors), daemon=True)
    reader.start()

    def forward(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough; nox may signal the group again
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)
        raise KeyboardInterrupt(f"interrupted by {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        proc.wait()
    except KeyboardInterrupt:
        # The signal reached pytest too: give it the time to stop its server and write its JUnit.
        _wait_or_kill(proc)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        reader.join(5)
        code = proc.poll()
        last_error = errors[-1] if errors else ""
        if not junit.exists() or (code not in (0, 1) and _testcases(junit) == 0):
            what = "before writing its JUnit file" if not junit.exists() else "without running a case"
            if code == 5:
                what = "with no case collected (is the case library empty?)"
            reason = f"pytest exited with code {code_name(code)} {what}"
            write_status(reports, cell, "error", f"{reason}: {last_error}" if last_error else reason)
        elif code == 2 and not _is_marked(junit):  # interrupted: keep what ran, say it did not finish
            add_properties(junit, {"interrupted": f"pytest was interrupted ({last_error or 'signal'})"})
        if junit.exists():
            add_properties(junit, {"setup_s": f"{setup_s:.3f}"})
    if code not in (0, 1):
        print(f"{cell.id}: pytest exited with code {code_name(code)}", file=sys.stderr)
    return code


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
        return any(p.get("name") == "interrupted" for p in ET.parse(junit).getroot().iter("property"))
    except (ET.ParseError, OSError):
        return False


def _copy_output(proc: subprocess.Popen[bytes], errors: list[str]) -> None:
    """Copy pytest's output through, keeping its error lines for the cell's error message."""
    assert proc.stdout is not None
    for raw in proc.stdout:
        sys.stdout.buffer.write(raw)
        sys.stdout.flush()
        line = raw.decode("utf-8", "replace").strip()
        if line.startswith(("ERROR:", "INTERNALERROR>", "E   ")):
            errors.append(line)


def _testcases(junit: Path) -> int:
    try:
        return sum(1 for _ in ET.parse(junit).getroot().iter("testcase"))
    except (ET.ParseError, OSError):
        return 0


def _terminate_with_parent() -> None:
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_or_kill(proc: subprocess.Popen[bytes], timeout: float = 20) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def code_name(code: int | None) -> str:
    if code is None:
        return "none (still running)"
    if code < 0:
        return f"{code} ({signal.Signals(-code).name})"
    return str(code)
