"""harness.processes with plain child processes: dying with the parent, bounded shutdown, exit names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness import processes

pytestmark = pytest.mark.fast

CHILD_SLEEPS = "import time; time.sleep(60)"


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_grace_periods_nest_outer_longer_than_inner() -> None:
    chain = [processes.SERVER_STOP_GRACE, processes.PYTEST_STOP_GRACE, processes.CELL_STOP_GRACE,
             processes.RUN_STOP_GRACE, processes.NOX_STOP_GRACE]
    assert chain == sorted(chain) and len(set(chain)) == len(chain)


def test_a_grandchild_dies_when_its_parent_is_sigkilled(tmp_path: Path) -> None:
    """parent (spawned here) -> grandchild (spawned by the parent with processes.spawn): SIGKILL of
    the parent ends the grandchild, which nobody signals."""
    pid_file = tmp_path / "grandchild.pid"
    parent_code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(processes.__file__).parents[1])!r})
        from harness import processes
        child = processes.spawn([sys.executable, "-c", {CHILD_SLEEPS!r}])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(60)
        """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the parent never started its child"
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    assert wait_gone(grandchild, 5), "the grandchild outlived its parent"


def test_shutdown_kills_after_the_grace_a_child_that_ignores_the_signal() -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    proc = processes.spawn([sys.executable, "-c", stubborn], own_group=True, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    started = time.monotonic()
    code = processes.shutdown(proc, grace=0.5, first=signal.SIGINT, group=True)
    assert code == -signal.SIGKILL
    assert time.monotonic() - started < 5
    assert not processes.group_alive(proc.pid)


def test_shutdown_returns_at_once_for_a_child_that_stops_politely() -> None:
    proc = processes.spawn([sys.executable, "-c", CHILD_SLEEPS])
    time.sleep(0.2)
    started = time.monotonic()
    assert processes.shutdown(proc, grace=10, first=signal.SIGTERM) == -signal.SIGTERM
    assert time.monotonic() - started < 5


def test_restore_sigint_lets_ctrl_c_reach_a_child_started_with_it_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = processes.spawn([sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"],
                               restore_sigint=True, stdout=subprocess.PIPE)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(10) != 0, "the child ended on SIGINT"


@pytest.mark.parametrize(("code", "text"), [(0, "exit code 0"), (17, "exit code 17"),
                                            (-9, "killed by SIGKILL"), (-6, "killed by SIGABRT"),
                                            (None, "still running")])
def test_describe_exit(code: int | None, text: str) -> None:
    assert processes.describe_exit(code) == text
