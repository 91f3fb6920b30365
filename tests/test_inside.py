"""Where a server runs, read the same way on every runner (harness/servers/procwatch.py, inside.py):
/proc and /dev/shm of a stand-in machine, the stub watch, and procwatch run as the docker runner runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.servers import procwatch
from harness.servers.docker import PROCWATCH
from harness.servers.inside import Inside, Proc
from harness.servers.stubs import StubEnds

pytestmark = pytest.mark.fast

SERVER = 40
STUB_ARGV = ["/opt/tritonserver/backends/python/triton_python_backend_stub", "/models/pb_x/1/model.py",
             "tm1_pb_x_0_0", "1048576", "1048576", str(SERVER), "/opt/tritonserver/backends/python", "336",
             "pb_x_0_0", "DEFAULT"]


def stat_line(pid: int, comm: str, state: str, ppid: int, *, exit_status: int = 0) -> str:
    """A /proc/<pid>/stat line: fields 3.. after the comm, 52 fields in all."""
    rest = [state, str(ppid)] + ["0"] * 17 + [str(1000 + pid)] + ["0"] * 29 + [str(exit_status)]
    return f"{pid} ({comm}) {' '.join(rest)}\n"


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A stand-in /proc and /dev/shm; ``add(pid, comm, state, ppid, argv, exit_status)``, ``drop(pid)``."""
    proc, shm = tmp_path / "proc", tmp_path / "shm"
    proc.mkdir()
    shm.mkdir()
    monkeypatch.setattr(procwatch, "PROC", str(proc))
    monkeypatch.setattr(procwatch, "SHM", str(shm))

    class Machine:
        def add(self, pid, comm, state, ppid, argv=(), exit_status=0):
            (proc / str(pid)).mkdir(exist_ok=True)
            (proc / str(pid) / "stat").write_text(stat_line(pid, comm, state, ppid, exit_status=exit_status))
            (proc / str(pid) / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in argv))

        def drop(self, pid):
            for item in (proc / str(pid)).iterdir():
                item.unlink()
            (proc / str(pid)).rmdir()

    return Machine()


def test_a_stat_line_is_read_with_a_comm_that_holds_parentheses(machine) -> None:
    machine.add(7, "odd) (name", "S", 1, ["odd"])
    assert procwatch.stat(7) == {"pid": 7, "comm": "odd) (name", "state": "S", "ppid": 1, "starttime": 1007,
                                 "exit_status": 0}
    assert procwatch.stat(8) is None


def test_the_stub_watch_reports_a_stub_that_died_with_its_status_and_one_reaped_without(machine) -> None:
    machine.add(SERVER, "tritonserver", "S", 1, ["tritonserver"])
    machine.add(41, "triton_python_b", "S", SERVER, STUB_ARGV)
    machine.add(42, "triton_python_b", "S", SERVER, [*STUB_ARGV[:8], "pb_y_0_0"])
    machine.add(43, "triton_python_b", "S", 1, STUB_ARGV)  # another server's
    watch = procwatch.StubWatch(SERVER)
    assert watch.poll() == []
    machine.add(41, "triton_python_b", "Z", SERVER, exit_status=17 << 8)
    machine.drop(42)
    ended = sorted(watch.poll(), key=lambda e: e["pid"])
    assert ended == [{"pid": 41, "model": "pb_x", "instance": "pb_x_0_0", "status": 17 << 8},
                     {"pid": 42, "model": "pb_x", "instance": "pb_y_0_0", "status": None}]
    assert watch.poll() == []
    ends = StubEnds()
    for end in ended:
        ends.add(end)
    assert ends.ended_since(0.0) == ["the python backend stub of model 'pb_x' (pid 41) exited with code 17"]
    assert procwatch.server_pid() == SERVER


def test_shared_memory_regions_are_written_read_listed_and_removed(machine) -> None:
    procwatch.shm_write("/tmq_in", b"\x00\x01payload")
    assert procwatch.shm_read("tmq_in") == b"\x00\x01payload"
    assert procwatch.shm_files("tmq_") == {"tmq_in": 9}
    procwatch.shm_remove("/tmq_in")
    procwatch.shm_remove("/tmq_in")  # gone: no error
    assert procwatch.shm_read("/tmq_in") is None
    with pytest.raises(ValueError, match="not a shared-memory key"):
        procwatch.shm_write("/../etc/x", b"")


def test_procwatch_run_as_the_docker_runner_runs_it_answers_json() -> None:
    """python3 -c <source> <command>: what the container runs (here on this machine)."""
    def run(*args: str) -> object:
        done = subprocess.run([sys.executable, "-c", PROCWATCH, *args], capture_output=True, text=True, check=False)
        return procwatch.answer(done.stdout, done.returncode, args[0])

    pids = {p["pid"] for p in run("processes")}  # type: ignore[union-attr]
    assert 1 in pids
    assert run("python")["prefix"] == sys.prefix  # type: ignore[index]
    with pytest.raises(ProcessLookupError):
        run("kill", "999999999", "0")
    with pytest.raises(ValueError, match="unknown command"):
        run("nothing")
    assert json.loads(subprocess.run([sys.executable, "-c", PROCWATCH, "server-pid"], capture_output=True,
                                     text=True, check=True).stdout) == {"result": procwatch.server_pid()}


class Stand(Inside):
    """An Inside over a fixed list of processes."""

    def __init__(self, procs: list[Proc], server: int) -> None:
        self.procs, self.server = procs, server

    def processes(self) -> list[Proc]:
        return self.procs

    def server_pid(self) -> int | None:
        return self.server

    signal = kill_server = shm_files = shm_write = shm_read = shm_remove = python = None  # type: ignore[assignment]


def test_the_stubs_are_the_servers_live_children_that_run_the_stub() -> None:
    def proc(pid, state, ppid, argv, comm="triton_python_b"):
        return Proc(pid=pid, ppid=ppid, state=state, starttime=1, comm=comm, argv=tuple(argv))

    procs = [proc(41, "S", SERVER, STUB_ARGV), proc(42, "Z", SERVER, []), proc(43, "S", 1, STUB_ARGV),
             proc(44, "S", SERVER, ["/bin/sh"], comm="sh")]
    inside = Stand(procs, SERVER)
    assert [p.pid for p in inside.children()] == [41, 42, 44]
    assert [p.pid for p in inside.stubs()] == [41]
    assert [p.pid for p in inside.stubs("pb_x")] == [41] and inside.stubs("other") == []
    assert procs[1].is_stub and procs[1].zombie and procs[1].model is None
    assert procs[0].model == "pb_x"
