"""The local runner: the ``tritonserver`` bundled in a release's ``nvidia-pytriton`` wheel, as a child.

Only the wheel's binary, backends, stubs and shared libraries are used (not PyTriton's Python API).
The server gets a backend directory of its own, with the stub of the cell's Python next to
``libtriton_python.so``; its venv goes first on ``PATH`` and its Python's ``lib/`` on
``LD_LIBRARY_PATH``, since most stubs need that libpython. It listens on loopback only, in its own
process group, and dies with its parent (``PR_SET_PDEATHSIG``). Stopping is SIGINT, a bounded wait,
then SIGKILL to the whole group, so that no stub outlives its server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

from harness import processes
from harness.servers import Ports, Server, ServerError, procwatch
from harness.servers.inside import Inside, Proc
from harness.servers.options import ServerOptions, server_env
from harness.servers.stubs import StubMonitor


def wheel_root(venv: Path) -> Path:
    """``pytriton/tritonserver`` inside a venv that has the wheel installed."""
    found = sorted(glob.glob(str(venv / "lib" / "python*" / "site-packages" / "pytriton" / "tritonserver")))
    if not found:
        raise ServerError(
            "no pytriton/tritonserver in this venv",
            where=str(venv),
            fix="install the release's nvidia-pytriton wheel into the cell's venv",
        )
    return Path(found[0])


def stub_path(venv: Path, python: str) -> Path:
    return wheel_root(venv) / "python_backend_stubs" / python / "triton_python_backend_stub"


def shipped_stubs(venv: Path) -> list[str]:
    root = wheel_root(venv) / "python_backend_stubs"
    return sorted((p.name for p in root.iterdir() if (p / "triton_python_backend_stub").exists()),
                  key=lambda v: tuple(int(x) for x in v.split(".")))


def free_ports(count: int = 3) -> list[int]:
    """Ports the kernel hands out now on loopback (held together so they differ)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class LocalServer(Server):
    """``tritonserver`` from a venv's nvidia-pytriton wheel, running as this process's child."""

    name = "tritonserver"

    def __init__(
        self,
        *,
        venv: Path,
        python: str,
        python_libdir: Path | None,
        repository: Path,
        workdir: Path,
        log_path: Path,
        start_timeout: float = 60.0,
        load_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        extra_args: tuple[str, ...] = (),
        extra_backends: dict[str, Path] | None = None,
    ) -> None:
        super().__init__(log_path=log_path, start_timeout=start_timeout, load_timeout=load_timeout)
        self.venv = Path(venv)
        self.python = python
        self.python_libdir = python_libdir
        self.repository = Path(repository)
        self.workdir = Path(workdir)
        self.stop_timeout = stop_timeout
        self.extra_args = tuple(extra_args)
        self.extra_backends = dict(extra_backends or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = None
        self._stubs: StubMonitor | None = None

    # -- setup -------------------------------------------------------------------------------------
    def venv_python(self) -> str | None:
        """The venv's Python (major.minor), read from its pyvenv.cfg."""
        try:
            text = (self.venv / "pyvenv.cfg").read_text(encoding="utf-8")
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("version_info", "version"):
                return ".".join(value.strip().split(".")[:2])
        return None

    def backend_dir(self) -> Path:
        """Compose this server's backend directory: the python backend with the cell's stub."""
        root = wheel_root(self.venv)
        venv_python = self.venv_python()
        if venv_python and venv_python != self.python:
            # The stub would start, then fail every load with a misleading "No module named 'numpy'".
            raise ServerError(
                f"the venv runs Python {venv_python} but the stub asked for is {self.python}'s",
                where=str(self.venv), fix="give the server the stub of the venv's Python")
        stub = stub_path(self.venv, self.python)
        if not stub.exists():
            raise ServerError(
                f"the wheel ships no python backend stub for Python {self.python} "
                f"(it has {', '.join(shipped_stubs(self.venv))})",
                where=str(stub.parent.parent),
                fix="exclude this Python for this release in matrix.toml",
            )
        backends = self.workdir / "backends"
        python_dir = backends / "python"
        python_dir.mkdir(parents=True, exist_ok=True)
        for item in (root / "backends" / "python").iterdir():  # __pycache__ too: the stub's utils, compiled
            if item.is_dir():
                shutil.copytree(item, python_dir / item.name, dirs_exist_ok=True)
            else:
                shutil.copy2(item, python_dir / item.name)
        shutil.copy2(stub, python_dir / "triton_python_backend_stub")
        for name, path in self.extra_backends.items():
            target = backends / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(path, target)
        return backends

    def command(self, ports: Ports, backends: Path) -> list[str]:
        options = ServerOptions(repository=str(self.repository), backend_directory=str(backends), ports=ports,
                                address=self.host, stop_timeout=self.stop_timeout,
                                python_shm_prefix=self.shm_prefix, extra_args=self.extra_args)
        return [str(wheel_root(self.venv) / "bin" / "tritonserver"), *options.to_args()]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        libs = [str(wheel_root(self.venv).parent.parent / "nvidia_pytriton.libs")]
        if self.python_libdir:
            libs.append(str(self.python_libdir))
        if env.get("LD_LIBRARY_PATH"):
            libs.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
        env["PATH"] = os.pathsep.join([str(self.venv / "bin"), env.get("PATH", "/usr/bin:/bin")])
        env["VIRTUAL_ENV"] = str(self.venv)
        env.update(server_env(env))
        return env

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        backends = self.backend_dir()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        ports = Ports(**dict(zip(("http", "grpc", "metrics"), free_ports(3))))
        self.ports = ports
        self.proc = processes.spawn(
            self.command(ports, backends), own_group=True, death_signal=signal.SIGKILL,
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=self.environment(),
            cwd=self.workdir,
        )
        # Reap the server the moment it ends: its stubs take an unreaped (zombie) server for alive.
        threading.Thread(target=self.proc.wait, name="tritonserver-reaper", daemon=True).start()
        self._stubs = StubMonitor(self.proc.pid)
        self._stubs.start()

    @property
    def inside(self) -> LocalInside:
        return LocalInside(self)

    def ended_stubs(self, since: float, model: str | None = None) -> list[str]:
        return self._stubs.ended_since(since, model) if self._stubs else []

    def backends(self) -> list[str]:
        root = self.workdir / "backends"
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    def exit_status(self) -> str | None:
        if self.proc is None:
            return "never started"
        code = self.proc.poll()
        if code is None and processes.exiting(self.proc.pid):  # a crash a client already saw: how it ended
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.proc.wait(2)
        return None if code is None else processes.describe_exit(code)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def root_pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def stop(self) -> None:
        """SIGINT, wait up to ``stop_timeout``, then SIGKILL the group; always leaves nothing behind."""
        if self.proc is None:
            return
        processes.shutdown(self.proc, grace=self.stop_timeout, first=signal.SIGINT, group=True)
        self._cleanup()

    def kill(self, reason: str) -> None:
        self.broken = reason
        self._kill_group()

    def _kill_group(self) -> None:
        assert self.proc is not None
        processes.kill_group(self.proc)

    def _cleanup(self) -> None:
        if self._stubs is not None:
            self._stubs.stop()
        for region in glob.glob(f"/dev/shm/{self.shm_prefix}*"):
            with contextlib.suppress(OSError):
                os.unlink(region)
        if self._log:
            self._log.close()
            self._log = None


class LocalInside(Inside):
    """This machine, where a local server runs: its /proc, its /dev/shm, this venv's Python."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server

    def processes(self) -> list[Proc]:
        return [Proc.of(fields) for fields in procwatch.processes()]

    def server_pid(self) -> int | None:
        return self.server.pid

    def signal(self, pid: int, signum: int) -> None:
        os.kill(pid, signum)

    def kill_server(self) -> None:
        if self.server.pid is not None:
            os.kill(self.server.pid, signal.SIGKILL)

    def shm_files(self, prefix: str) -> dict[str, int]:
        return procwatch.shm_files(prefix)

    def shm_write(self, key: str, data: bytes) -> None:
        procwatch.shm_write(key, data)

    def shm_read(self, key: str) -> bytes | None:
        return procwatch.shm_read(key)

    def shm_remove(self, key: str) -> None:
        procwatch.shm_remove(key)

    def python(self) -> dict[str, Any]:
        """The server's venv's Python, run with the server's environment."""
        done = subprocess.run([str(self.server.venv / "bin" / "python"), procwatch.__file__, "python"],
                              capture_output=True, text=True, env=self.server.environment(), timeout=60, check=False)
        return dict(procwatch.answer(done.stdout, done.returncode, "python"))  # type: ignore[call-overload]
