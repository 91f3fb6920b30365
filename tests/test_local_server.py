"""harness.servers.local against the real tritonserver of the 24.10 wheel."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import ipaddress
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, require
from harness import matrix, processes
from harness.matrix import envs
from harness.matrix import interpreters
from harness.client import Client
from harness.servers import LoadTimeout, ServerError, StubCannotStart
from harness.servers.local import LocalServer, shipped_stubs, wheel_root

ADD_SUB = ROOT / "cases" / "basics" / "models" / "add_sub"


def make_repo(tmp_path: Path, *models: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for model in models:
        shutil.copytree(model, repo / model.name)
        config = repo / model.name / "config.pbtxt"
        config.write_text(config.read_text().replace("${kind}", "KIND_CPU"))
    return repo


def server_for(cell_env: envs.CellEnv, tmp_path: Path, **kwargs) -> LocalServer:
    options = {
        "venv": cell_env.path,
        "python": cell_env.interpreter.version,
        "python_libdir": cell_env.interpreter.libdir,
        "repository": make_repo(tmp_path, ADD_SUB),
        "workdir": tmp_path,
        "log_path": tmp_path / "server.log",
        "stop_timeout": 5,
        "load_timeout": 30,
    }
    options.update(kwargs)
    return LocalServer(**options)


def listening_sockets(pid: int) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets in LISTEN that belong to ``pid``, from /proc."""
    inodes = set()
    for fd in glob.glob(f"/proc/{pid}/fd/*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                addr, port = fields[1].split(":")
                raw = bytes.fromhex(addr)
                # /proc prints each 32-bit word in host (little-endian) order.
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                ip = ipaddress.ip_address(raw)
                if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                    ip = ip.ipv4_mapped
                found.add((str(ip), int(port, 16)))
    return found


def test_start_ready_infer_stop_leaves_nothing(cell_env: envs.CellEnv, tmp_path: Path) -> None:
    server = server_for(cell_env, tmp_path)
    with server:
        assert server.version == "2.51.0", "the live server reports its own version"
        result = server.load("add_sub")
        assert result.error is None, result.log
        client = Client("grpc", server.grpc_client())
        a = np.array([1, 2, 3, 4], dtype=np.float32)
        out = client.infer("add_sub", {"INPUT0": a, "INPUT1": a})
        np.testing.assert_array_equal(out["OUTPUT0"], a * 2)
        client.close()
        stubs_seen = processes.group_alive(server.pid)
        pid = server.pid
        shm = glob.glob(f"/dev/shm/{server.shm_prefix}*")
        assert shm, "the python backend made its shared-memory regions with our prefix"
    assert stubs_seen
    assert server.exit_status() is not None
    assert not processes.group_alive(server.pid), "no server or stub process of the group is left"
    assert not os.path.exists(f"/proc/{pid}") or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    assert not glob.glob(f"/dev/shm/{server.shm_prefix}*"), "its shared-memory regions are removed"
    assert "successfully loaded 'add_sub'" in server.log_path.read_text()


def test_listens_on_loopback_only(cell_env: envs.CellEnv, tmp_path: Path) -> None:
    with server_for(cell_env, tmp_path) as server:
        deadline = time.monotonic() + 10
        while True:  # the metrics service starts just after the server answers ready
            try:
                urllib.request.urlopen(server.metrics_url, timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "metrics never answered"
                time.sleep(0.05)
        sockets = listening_sockets(server.pid)
        ports = {server.ports.http, server.ports.grpc, server.ports.metrics}
        assert {port for _, port in sockets} >= ports
        for ip, port in sockets:
            if port in ports:
                assert ip == "127.0.0.1", f"port {port} listens on {ip}"


def test_ready_timeout_uses_the_injected_clock(cell_env: envs.CellEnv, tmp_path: Path) -> None:
    """A server that never answers fails within the timeout of the clock it is given."""
    server = server_for(cell_env, tmp_path)
    server.exit_status = lambda: None  # type: ignore[method-assign]  # "running", but nothing listens
    from harness.servers import Ports

    server.ports = Ports(http=1, grpc=2, metrics=3)  # nothing listens on port 1
    now = [0.0]
    with pytest.raises(ServerError, match="not ready within 5 s"):
        server.wait_ready(5, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + 1.0))
    assert now[0] == 5.0


def test_a_server_that_exits_fails_with_its_log_tail(cell_env: envs.CellEnv, tmp_path: Path) -> None:
    server = server_for(cell_env, tmp_path, extra_args=("--no-such-option",))
    with pytest.raises(ServerError) as info:
        with server:
            pass
    message = str(info.value)
    assert "exited before it was ready (exit code" in message
    assert "no-such-option" in message, "the log's tail names the bad option"
    assert not processes.group_alive(server.pid)


def test_stub_without_libpython_is_caught_killed_and_named(tmp_path: Path) -> None:
    """The stub hangs the load forever when it cannot load libpython; the harness must not.

    Python 3.12 here has no system libpython (Debian ships 3.11's), so leaving its lib/ off
    LD_LIBRARY_PATH reproduces the hang for real.
    """
    found = interpreters.find("3.12")
    require(isinstance(found, interpreters.Interpreter), getattr(found, "reason", ""))
    release = matrix.load(ROOT / "matrix.toml").release("24.10")
    env312 = envs.ensure(release="24.10", pytriton=release.pytriton or "", interpreter=found,
                         packages=matrix.DEFAULT_ENV_PACKAGES)
    server = server_for(env312, tmp_path, python_libdir=None)
    assert str(found.libdir) not in server.environment()["LD_LIBRARY_PATH"]
    with server:
        started = time.monotonic()
        with pytest.raises(StubCannotStart) as info:
            server.load("add_sub", timeout=30)
        took = time.monotonic() - started
    message = str(info.value)
    assert "cannot load libpython3.12.so.1.0" in message
    assert "the server was killed" in message
    assert took < 15, "caught from the log line, not by waiting out the timeout"
    assert not processes.group_alive(server.pid)


def test_a_load_that_never_answers_is_a_load_timeout_and_the_server_is_killed(cell_env: envs.CellEnv,
                                                                              tmp_path: Path) -> None:
    """A model whose initialize never returns: the load is bounded, its kind says so (a LoadTimeout, not
    a server that exited: the kill that ends the wait comes after the verdict)."""
    hang = tmp_path / "models" / "init_hangs"
    shutil.copytree(ADD_SUB, hang)
    config = hang / "config.pbtxt"
    config.write_text(config.read_text().replace('"add_sub"', '"init_hangs"'))
    model = hang / "1" / "model.py"
    model.write_text(model.read_text().replace("class TritonPythonModel:", "class TritonPythonModel:\n"
                                               "    def initialize(self, args):\n"
                                               "        import time\n"
                                               "        time.sleep(600)\n", 1))
    (tmp_path / "r").mkdir()
    server = server_for(cell_env, tmp_path, repository=make_repo(tmp_path / "r", hang))
    with server:
        started = time.monotonic()
        with pytest.raises(LoadTimeout, match=r"loading 'init_hangs' did not finish within 3 s"):
            server.load("init_hangs", timeout=3)
        assert time.monotonic() - started < 10
    assert not processes.group_alive(server.pid)


def test_stub_of_each_shipped_python(cell_env: envs.CellEnv) -> None:
    assert shipped_stubs(cell_env.path) == ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]
    assert (wheel_root(cell_env.path) / "bin" / "tritonserver").exists()


def test_stub_of_another_python_is_refused_before_it_misleads(cell_env: envs.CellEnv, tmp_path: Path) -> None:
    """A 3.12 stub with a 3.11 venv fails every load with "No module named 'numpy'": refuse it first."""
    server = server_for(cell_env, tmp_path, python="3.12")
    with pytest.raises(ServerError) as info:
        server.start()
    assert "the venv runs Python 3.11 but the stub asked for is 3.12's" in str(info.value)
    assert server.proc is None, "nothing was started"


def test_missing_stub_is_a_clear_error(cell_env: envs.CellEnv, tmp_path: Path) -> None:
    server = server_for(cell_env, tmp_path, python="3.7")
    server.venv_python = lambda: None  # type: ignore[method-assign]  # the venv check comes first otherwise
    with pytest.raises(ServerError, match="no python backend stub for Python 3.7"):
        server.start()


def test_sigkilled_server_is_reported_and_its_stubs_go(cell_env: envs.CellEnv, tmp_path: Path) -> None:
    server = server_for(cell_env, tmp_path)
    with server:
        assert server.load("add_sub").error is None
        os.kill(server.pid, signal.SIGKILL)
        server.proc.wait(10)
        with pytest.raises(ServerError, match="killed by SIGKILL"):
            server.check_alive()
    assert not processes.group_alive(server.pid)
