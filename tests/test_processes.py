"""harness.processes with plain child processes: dying with the parent, bounded shutdown, exit names."""

from __future__ import annotations

import json
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


def test_a_dead_workers_server_and_its_stubs_are_ended_by_the_runner_they_were_handed_to(tmp_path: Path) -> None:
    """runner (adopts orphans) -> worker -> server (own group, dies with the worker) -> stub (ignores
    SIGTERM, does not die with anyone): after a SIGKILL of the worker, the stub is an orphan that only
    the runner can reach; end_orphans ends it and leaves the runner's own children alone."""
    stub_pid = tmp_path / "stub.pid"
    stub = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    server = textwrap.dedent(f"""
        import subprocess, sys, time
        stub = subprocess.Popen([sys.executable, "-c", {stub!r}], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        open({str(stub_pid)!r}, "w").write(str(stub.pid))
        time.sleep(60)
        """)
    worker = textwrap.dedent(f"""
        import signal, sys, time
        sys.path.insert(0, {str(Path(processes.__file__).parents[1])!r})
        from harness import processes
        processes.spawn([sys.executable, "-c", {server!r}], own_group=True, death_signal=signal.SIGKILL)
        time.sleep(60)
        """)
    runner = textwrap.dedent(f"""
        import json, os, subprocess, sys, time
        from pathlib import Path
        sys.path.insert(0, {str(Path(processes.__file__).parents[1])!r})
        from harness import processes
        processes.adopt_orphans()
        own = subprocess.Popen([sys.executable, "-c", {CHILD_SLEEPS!r}])
        worker = subprocess.Popen([sys.executable, "-c", {worker!r}])
        deadline = time.monotonic() + 20
        while not Path({str(stub_pid)!r}).exists() or not Path({str(stub_pid)!r}).read_text():
            assert time.monotonic() < deadline, "the stub never started"
            time.sleep(0.05)
        worker.kill()
        worker.wait()
        found = processes.end_orphans([own.pid, worker.pid])
        print(json.dumps({{"found": found, "own_alive": own.poll() is None}}))
        own.kill()
        """)
    done = subprocess.run([sys.executable, "-c", runner], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    stub_alive = not wait_gone(int(stub_pid.read_text()), 1)
    if stub_alive:
        os.kill(int(stub_pid.read_text()), signal.SIGKILL)
    assert not stub_alive, "the dead worker's stub outlived the runner"
    assert result["found"], "end_orphans found nothing to end"
    assert result["own_alive"], "end_orphans killed a child the runner started itself"


def test_an_orphan_that_ended_is_reaped_not_left_a_zombie() -> None:
    """A stub whose server its worker stopped ends by itself, handed to the cell runner: reap_adopted
    reaps it (a zombie would wait for the end of the cell)."""
    runner = textwrap.dedent(f"""
        import json, subprocess, sys, time
        sys.path.insert(0, {str(Path(processes.__file__).parents[1])!r})
        from harness import processes
        processes.adopt_orphans()
        child = subprocess.Popen([sys.executable, "-c",
                                  "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'pass'])"])
        child.wait()
        time.sleep(1.0)
        before = processes.adopted([child.pid])
        processes.reap_adopted([child.pid])
        print(json.dumps({{"before": before, "after": processes.adopted([child.pid])}}))
        """)
    done = subprocess.run([sys.executable, "-c", runner], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert len(result["before"]) == 1 and result["after"] == [], result


def test_end_orphans_does_nothing_where_the_process_adopts_none() -> None:
    """Outside a cell runner (this test process), a child it did not start is somebody's: left alone."""
    assert not processes.adopts_orphans()
    assert processes.end_orphans([]) == []


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


def test_a_stop_budget_shortens_the_grace_and_a_bad_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """$TRITON_MATRIX_STOP_BUDGET (a cancelled CI step: SIGTERM 7.5 s after SIGINT) leaves the workers the
    budget less the cell runner's wrap-up; unset, the nested grace stands."""
    from harness.errors import HarnessError
    from harness.layout import STOP_BUDGET_ENV

    monkeypatch.delenv(STOP_BUDGET_ENV, raising=False)
    assert processes.within_stop_budget(processes.PYTEST_STOP_GRACE) == processes.PYTEST_STOP_GRACE
    monkeypatch.setenv(STOP_BUDGET_ENV, "6")
    assert processes.within_stop_budget(processes.PYTEST_STOP_GRACE) == 6 - processes.CELL_WRAP_UP
    assert processes.within_stop_budget(1.0) == 1.0
    for bad in ("soon", "2", "nan", "-1"):
        monkeypatch.setenv(STOP_BUDGET_ENV, bad)
        with pytest.raises(HarnessError, match=STOP_BUDGET_ENV):
            processes.stop_budget()
