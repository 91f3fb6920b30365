"""A result must not depend on how busy the machine is: the same cases give the same states while a
busy loop per CPU hogs the machine as on an idle one (real servers, the built-in library's modules
that timed out under load before their deadlines judged progress)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from conftest import ROOT, run_harness, triton_processes

from harness.deadlines import cpu_count

CELL = "24.10-python-cpu-py3.11"
# The lifecycle module (five stub starts and stops in one case) and the valid configs (eleven models
# loaded at once by a module fixture): both timed out on a busy 2-core machine.
MODULES = ("cases/python_backend/test_lifecycle.py", "cases/config/test_valid_configs.py")


@contextlib.contextmanager
def busy_loop_per_cpu() -> Iterator[None]:
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
            for _ in range(cpu_count())]
    try:
        yield
    finally:
        for hog in hogs:
            os.killpg(hog.pid, signal.SIGKILL)
            hog.wait()


def states(reports: Path) -> dict[str, str]:
    done = run_harness("cell", CELL, f"--reports={reports}", "--", *MODULES, timeout=900)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-2000:]
    run_harness("report", f"--reports={reports}")
    data = json.loads((reports / "compat.json").read_text())
    assert not data["partial"]
    return {r["case"]: r["state"] for r in data["results"]}


def test_a_busy_loop_per_cpu_changes_no_state(tmp_path: Path) -> None:
    idle = states(tmp_path / "idle")
    with busy_loop_per_cpu():
        loaded = states(tmp_path / "loaded")
    assert len(idle) > 20 and "timeout" not in idle.values(), idle
    assert loaded == idle, {case: (idle.get(case), loaded.get(case)) for case in idle.keys() | loaded.keys()
                            if idle.get(case) != loaded.get(case)}
    assert not triton_processes(), "a server or stub outlived the cell"
    assert ROOT.is_dir()
