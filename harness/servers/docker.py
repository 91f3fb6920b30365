"""The docker runner: the cell's server in a container of a real Docker engine (docker SDK).

The pytest process stays on the host and talks to the container's ports, which are published on
127.0.0.1 only, on host ports the engine picks (read back after start). The container runs a hardened
profile (:meth:`DockerServer.profile`): uid 1000 (the images' ``triton-server`` user), a read-only
root filesystem with a tmpfs ``/tmp`` that allows exec (stubs, unpacked environments) and a sized
``/dev/shm``, the memory, CPU and pids limits of ``[docker]`` in matrix.toml, every capability dropped,
no-new-privileges, the engine's default seccomp profile, GPUs only in GPU cells. The model repository
is mounted read-only and must be readable by uid 1000. A server that reaches a limit fails with the
limit it reached (:class:`MemoryLimitReached`, :class:`PidsLimitReached`).

Every container carries labels (run, cell, owner pid on this host). The run's reaper
(``harness.servers.reaper``) removes the run's containers when the run dies, SIGKILL included;
containers left by an earlier run whose owner process is gone are removed before a new one starts,
and the container of a cell is stopped and removed in a ``finally``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from harness.matrix import images
from harness.errors import NotApplicable
from harness.matrix import Cell, Release
from harness.matrix.settings import DockerSettings
from harness.servers import LoadResult, Ports, Server, ServerError, ServerExited, procwatch, reaper
from harness.servers.inside import Inside, InsideError, Proc
from harness.servers.options import ServerOptions, server_env
from harness.servers.reaper import LABEL, RUN_ID_ENV, run_id
from harness.servers.stubs import StubEnds

__all__ = ["LABEL", "RUN_ID_ENV", "DockerServer", "LimitReached", "MemoryLimitReached", "PidsLimitReached",
           "RepositoryNotReadable", "engine", "remove_leftovers", "run_id"]

CONTAINER_PORTS = Ports(http=8000, grpc=8001, metrics=8002)
LOG_SYNC_S = 10.0  # at most this long for a log mark to come through the engine's copy of the output
SERVER_STREAMS = (1, 2)  # the server's stdout and stderr, which the engine copies apart
SERVER_UID = 1000  # the NGC images' triton-server user; the offline image has it too
SERVER_USER = f"{SERVER_UID}:{SERVER_UID}"
LIMITS_WATCH_S = 0.01  # how often the container's cgroups are read for refused forks and OOM kills
PROCWATCH = Path(procwatch.__file__).read_text(encoding="utf-8")  # run in the container as python3 -c
SHM_ARG_BYTES = 64 * 1024  # the most a region written into the container may hold (it goes as an argument)


class LimitReached(ServerExited):
    """The server reached a limit of its container's profile (``[docker]`` in matrix.toml)."""


class MemoryLimitReached(LimitReached):
    """The container was OOM-killed at its memory limit."""


class PidsLimitReached(LimitReached):
    """The container's pids limit refused a process or thread."""


class RepositoryNotReadable(ServerError):
    """A mounted folder cannot be read by the server's uid and is not this process's to open up."""


def engine() -> Any:
    """A client of the Docker engine, or a one-line error saying how to get one."""
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        reason = str(exc).split("(")[0].strip() or type(exc).__name__
        raise ServerError(f"the Docker engine is not reachable ({reason})", where=where,
                          fix="start dockerd (or set DOCKER_HOST), or use --runner local") from None


def readable_by_server(root: Path) -> None:
    """Let uid 1000 read ``root`` (mounted into the container): everyone may read its files and enter
    its folders. The harness's own folders (a rendered repository, a ``mkdtemp`` one with mode 0700)
    are opened up; a folder of someone else's that is closed is a :class:`RepositoryNotReadable`."""
    for path in (root, *root.rglob("*")):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        wanted = 0o005 if path.is_dir() else 0o004
        if mode & wanted == wanted:
            continue
        try:
            path.chmod(mode | wanted)
        except PermissionError:
            raise RepositoryNotReadable(
                f"the server runs as uid {SERVER_UID} in its container and cannot read this",
                where=str(path), fix=f"chmod -R a+rX {root}") from None


# What each limit's cgroup counts when it is reached: controller -> (v1 file, v2 file, key).
LIMIT_COUNTERS = {"pids": ("pids.events", "pids.events", "max"),
                  "memory": ("memory.oom_control", "memory.events", "oom_kill")}


def _cgroup_counters(engine_info: dict[str, Any], container_id: str, parent: str = "") -> dict[str, Path]:
    """The files in which the container's cgroups count refused forks and OOM kills, as the engine
    names its cgroups (cgroup v1 or v2, cgroupfs or systemd driver), where this machine sees them (an
    engine on this kernel). Known before the container starts: a server that dies at once is still seen."""
    root = Path("/sys/fs/cgroup")
    if engine_info.get("CgroupDriver") == "systemd":
        group = f"{parent or 'system.slice'}/docker-{container_id}.scope"
    else:
        group = f"{parent.strip('/') or 'docker'}/{container_id}"
    v2 = str(engine_info.get("CgroupVersion", "1")) == "2"
    if not root.is_dir():
        return {}
    return {name: (root / group / files[1]) if v2 else (root / name / group / files[0])
            for name, files in LIMIT_COUNTERS.items()}


def _count(path: Path | None, key: str) -> int:
    """The counter ``key`` of a cgroup file (``max 3``, ``oom_kill 1``); 0 when unknown or gone."""
    try:
        text = path.read_text() if path is not None else ""
    except OSError:
        return 0
    for line in text.splitlines():
        name, _, count = line.partition(" ")
        if name == key and count.strip().isdigit():
            return int(count)
    return 0


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def remove_leftovers(client: Any) -> list[str]:
    """Remove containers of earlier runs on this host whose owner process is gone."""
    removed = []
    # ignore_removed: a container another run's reaper removes between the list and its inspect
    for container in client.containers.list(all=True, filters={"label": f"{LABEL}.owner"}, ignore_removed=True):
        host, _, pid = container.labels.get(f"{LABEL}.owner", "").rpartition(":")
        if host != socket.gethostname() or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # its run is still going
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        with contextlib.suppress(Exception):
            container.remove(force=True)
            removed.append(container.name)
    return removed



class DockerServer(Server):
    """tritonserver in a container; same interface as the local runner."""

    name = "tritonserver container"

    def __init__(
        self,
        *,
        cell: Cell,
        release: Release,
        repository: Path,
        log_path: Path,
        settings: DockerSettings | None = None,
        start_timeout: float = 60.0,
        load_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        extra_args: tuple[str, ...] = (),
        extra_backends: dict[str, Path] | None = None,
        client: Any = None,
    ) -> None:
        super().__init__(log_path=log_path, start_timeout=start_timeout, load_timeout=load_timeout)
        self.cell = cell
        self.release = release
        self.repository = Path(repository)
        self.settings = settings or DockerSettings()
        self.image_kind = self.settings.image
        self.stop_timeout = stop_timeout
        self.extra_args = tuple(extra_args)
        self.extra_backends = dict(extra_backends or {})
        self.client = client
        self.container: Any = None
        self.image: str | None = None
        self._log_thread: threading.Thread | None = None
        self._removed = False
        self._counters: dict[str, Path] = {}
        self._counts: dict[str, int] = {}  # limit -> times reached (LIMIT_COUNTERS), read while it runs
        self._limit_thread: threading.Thread | None = None
        self._info: dict[str, Any] | None = None
        self._stub_ends = StubEnds()

    def command(self) -> list[str]:
        options = ServerOptions(repository="/models", backend_directory="/opt/tritonserver/backends",
                                ports=CONTAINER_PORTS, address="0.0.0.0", stop_timeout=self.stop_timeout,
                                python_shm_prefix=self.shm_prefix, extra_args=self.extra_args)
        return ["tritonserver", *options.to_args()]

    def profile(self) -> dict[str, Any]:
        """The hardened container profile: the arguments of ``containers.create`` beside image and command."""
        import docker.types

        limits = self.settings
        volumes = {str(self.repository): {"bind": "/models", "mode": "ro"}}
        for name, path in self.extra_backends.items():
            volumes[str(path)] = {"bind": f"/opt/tritonserver/backends/{name}", "mode": "ro"}
        gpus = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])] if self.cell.gpu else None
        return {
            "user": SERVER_USER,
            "read_only": True,
            "tmpfs": {"/tmp": f"rw,exec,nosuid,nodev,size={limits.tmp_size}"},
            "shm_size": limits.shm_size,
            "mem_limit": limits.memory,
            "memswap_limit": limits.memory,  # no swap beyond the limit: reaching it is an OOM kill, not a crawl
            "nano_cpus": int(limits.cpus * 1e9),
            "pids_limit": limits.pids_limit,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],  # and no seccomp= option: the engine's default profile
            "privileged": False,
            "ports": {f"{port}/tcp": ("127.0.0.1", None) for port in
                      (CONTAINER_PORTS.http, CONTAINER_PORTS.grpc, CONTAINER_PORTS.metrics)},
            "volumes": volumes,
            "device_requests": gpus,
            # HOME on the writable /tmp: what a library caches under ~ has somewhere to go
            "environment": {**server_env(dict(os.environ)), "HOME": "/tmp"},
        }

    def start(self) -> None:
        import docker.errors

        self.client = self.client or engine()
        self._removed = False
        self._counts = {}
        reaper.ensure(run_id())  # before the first container: it goes when this run goes, however
        remove_leftovers(self.client)
        self.image, python = images.server_image(self.client, self.release, self.image_kind)
        if python != self.cell.python:
            raise NotApplicable(f"the {self.image_kind} image of {self.release.name} runs Python {python}, "
                                f"not {self.cell.python}")
        for mounted in (self.repository, *self.extra_backends.values()):
            readable_by_server(Path(mounted))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # create, then start: a container the engine cannot start (no GPU) still exists and is
            # removed by stop().
            self.container = self.client.containers.create(
                self.image,
                self.command(),
                name=f"triton-matrix-{self.cell.id}-{uuid.uuid4().hex[:8]}".replace(".", "_"),
                labels={LABEL: "1", f"{LABEL}.run": run_id(), f"{LABEL}.cell": self.cell.id,
                        f"{LABEL}.owner": _owner()},
                **self.profile(),
            )
            self._counters = _cgroup_counters(self._engine_info(), self.container.id)
            self._limit_thread = threading.Thread(target=self._watch_limits, name="container-limits", daemon=True)
            self._limit_thread.start()
            self.container.start()
        except docker.errors.APIError as exc:
            reason = str(exc.explanation or exc).strip().splitlines()[0]
            if self.cell.gpu:
                raise NotApplicable(f"the Docker engine gives no GPU: {reason}") from None
            raise ServerError(f"the container did not start: {reason}", where=self.image,
                              fix="see 'docker run' with the same image") from None
        self._log_thread = threading.Thread(target=self._stream_log, name="container-log", daemon=True)
        self._log_thread.start()
        # Not waited for: it looks before the server is ready, long before a load starts a stub.
        threading.Thread(target=self._watch_stubs, args=(self.container,), name="container-stubs",
                         daemon=True).start()
        self.container.reload()

        self.ports = Ports(**{
            name: int(self.container.ports[f"{port}/tcp"][0]["HostPort"])
            for name, port in (("http", CONTAINER_PORTS.http), ("grpc", CONTAINER_PORTS.grpc),
                               ("metrics", CONTAINER_PORTS.metrics))
        })

    def _read_counts(self) -> None:
        for name, path in self._counters.items():
            self._counts[name] = max(self._counts.get(name, 0), _count(path, LIMIT_COUNTERS[name][2]))

    def _engine_info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = self.client.info()
        return self._info

    def _watch_limits(self) -> None:
        """Read the limits' counters while the container runs: its cgroups, and so the counts, go with it
        (within milliseconds of its end). Waits for them to appear first (the container is starting)."""
        appear_by = time.monotonic() + 30
        while self._counters and not self._removed:
            there = any(p.exists() for p in self._counters.values())
            if there:
                appear_by = 0.0
                self._read_counts()
            elif time.monotonic() > appear_by:
                return
            time.sleep(LIMITS_WATCH_S)

    def limit_reached(self) -> LimitReached | None:
        """The limit of the profile this container reached, as the error to raise; None if none."""
        if self.container is None or self._removed:
            return None
        self._read_counts()
        with contextlib.suppress(Exception):
            self.container.reload()
        if self.container.attrs.get("State", {}).get("OOMKilled") or self._counts.get("memory"):
            return MemoryLimitReached(f"{self.name} reached its memory limit {self.settings.memory} and was "
                                      f"OOM-killed (raise [docker] memory in matrix.toml){self.tail_note()}")
        if self._counts.get("pids"):
            return PidsLimitReached(f"{self.name} reached its pids limit {self.settings.pids_limit}: "
                                    f"{self._counts['pids']} process or thread starts were refused (raise "
                                    f"[docker] pids_limit in matrix.toml){self.tail_note()}")
        return None

    def wait_ready(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return super().wait_ready(*args, **kwargs)
        except ServerError as exc:
            raise (self.limit_reached() or exc) from None

    def check_alive(self) -> None:
        try:
            super().check_alive()
        except ServerError as exc:
            raise (self.limit_reached() or exc) from None

    def load(self, model: str, **kwargs: Any) -> LoadResult:
        self._read_counts()
        before = dict(self._counts)
        try:
            result = super().load(model, **kwargs)
        except ServerError as exc:
            raise (self.limit_reached() or exc) from None
        if result.error is None:
            return result
        # A load that failed as a limit was reached (a stub refused a fork; the server OOM-killed, its
        # cgroups already gone before the engine says so): the limit, not the model.
        self._read_counts()
        ended = bool(self._counters) and not any(p.exists() for p in self._counters.values())
        if ended:
            with contextlib.suppress(Exception):
                self.container.wait(timeout=5)
        limit = self.limit_reached() if ended or self._counts != before else None
        if limit is not None:
            self.kill(str(limit).split("; log ")[0])
            raise limit
        return result

    def _stream_log(self) -> None:
        with open(self.log_path, "ab") as fh:
            for chunk in self.container.logs(stream=True, follow=True):
                fh.write(chunk)
                fh.flush()

    def _watch_stubs(self, container: Any) -> None:
        """Stream the ends of the python backend stubs from :mod:`harness.servers.procwatch`'s ``watch``,
        run in the container for as long as it runs (it polls the container's /proc as the local
        runner polls this machine's)."""
        try:
            for line in DockerInside.exec_stream(container, "watch", "auto"):
                said = json.loads(line)
                if "pid" in said:
                    self._stub_ends.add(said)
        except Exception:  # noqa: BLE001 - a container that ended has no more stubs to watch
            pass

    def ended_stubs(self, since: float, model: str | None = None) -> list[str]:
        return self._stub_ends.ended_since(since, model)

    @property
    def inside(self) -> DockerInside:
        return DockerInside(self)

    def sync_log(self) -> None:
        """Wait until the log file holds what the server wrote so far: the engine copies the container's
        output asynchronously, so a load's response can come before the lines it logged (a refused
        config's parser message was missing from a load's log). The engine copies stdout and stderr
        apart, each in its order, and the server logs to stderr: a mark written to each of the server's
        own streams comes through after what it wrote there, and once both are in the file, so is
        everything before them. Bounded; a container without a shell, or one that ended, is not waited for."""
        mark = f"triton-matrix log mark {uuid.uuid4().hex}"
        offset = self.log_offset()
        marking = " && ".join(f"echo '{mark}' >> /proc/1/fd/{fd}" for fd in SERVER_STREAMS)
        try:
            written = self.container.exec_run(["sh", "-c", marking]).exit_code == 0
        except Exception:  # noqa: BLE001 - a container that is gone has nothing more to copy
            written = False
        deadline = time.monotonic() + LOG_SYNC_S
        while written and self.log_since(offset).count(mark) < len(SERVER_STREAMS) and time.monotonic() < deadline:
            time.sleep(0.02)

    def root_pids(self) -> list[int]:
        """The container's first process as the host sees it (where the engine runs on this kernel)."""
        pid = (self.container.attrs.get("State", {}).get("Pid") if self.container is not None else None) or 0
        return [pid] if pid > 0 and Path(f"/proc/{pid}").exists() else []

    def backends(self) -> list[str]:
        listed = self.container.exec_run(["ls", "-1", "/opt/tritonserver/backends"])
        return sorted(listed.output.decode().split()) if listed.exit_code == 0 else []

    def exit_status(self) -> str | None:
        if self.container is None:
            return "never started"
        if self._removed:
            return "removed"
        try:
            self.container.reload()
        except Exception:
            return "container gone"
        state = self.container.attrs.get("State", {})
        if state.get("Running"):
            return None
        if state.get("OOMKilled"):
            return f"killed at its memory limit {self.settings.memory}"
        return f"exit code {state.get('ExitCode')}"

    def kill(self, reason: str) -> None:
        self.broken = reason
        if self.container is not None and not self._removed:
            with contextlib.suppress(Exception):
                self.container.kill()

    def stop(self) -> None:
        """SIGTERM with a bounded wait (the engine then SIGKILLs), then remove the container."""
        if self.container is None or self._removed:
            return
        try:
            with contextlib.suppress(Exception):
                self.container.stop(timeout=int(self.stop_timeout))
            if self._log_thread is not None:
                self._log_thread.join(5)
        finally:
            with contextlib.suppress(Exception):
                self.container.remove(force=True)
            self._removed = True


class DockerInside(Inside):
    """A docker server's container, read by :mod:`harness.servers.procwatch` run there (``docker exec``)
    as the container's user, uid 1000: the server's own user, so it may read the stubs' /proc, signal
    them and use /dev/shm, while the profile stays as it is (no capability, no root, read-only root)."""

    def __init__(self, server: DockerServer) -> None:
        self.server = server

    @staticmethod
    def exec_stream(container: Any, *args: str) -> Any:
        """The lines procwatch prints for ``args``, as they come."""
        client = container.client.api
        made = client.exec_create(container.id, ["python3", "-u", "-c", PROCWATCH, *args])
        buffer = b""
        for chunk in client.exec_start(made["Id"], stream=True):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line.decode("utf-8", "replace")

    def _run(self, *args: str) -> Any:
        import docker.errors

        container = self.server.container
        if container is None or self.server.exit_status() is not None:
            raise _Gone()
        try:
            done = container.exec_run(["python3", "-c", PROCWATCH, *args], demux=True)
        except docker.errors.APIError as exc:
            if self.server.exit_status() is not None:
                raise _Gone() from None
            raise InsideError(f"docker exec refused: {exc.explanation or exc}", where=container.name) from None
        out, err = (part.decode("utf-8", "replace") if part else "" for part in done.output)
        if done.exit_code not in (0, 1):
            raise InsideError(f"python3 in the container could not read it (exit code {done.exit_code}: "
                              f"{(err or out).strip()[-300:]})", where=container.name,
                              fix="use an image with python3 on its PATH (the NGC and offline images have it)")
        return procwatch.answer(out, done.exit_code, args[0])

    def processes(self) -> list[Proc]:
        try:
            return [Proc.of(fields) for fields in self._run("processes")]
        except _Gone:
            return []

    def server_pid(self) -> int | None:
        try:
            return self._run("server-pid")
        except _Gone:
            return None

    def children(self) -> list[Proc]:
        procs = self.processes()  # one exec, not a second for server_pid
        server = procwatch.server_among((p.pid, p.comm) for p in procs)
        return [p for p in procs if server is not None and p.ppid == server]

    def signal(self, pid: int, signum: int) -> None:
        try:
            self._run("kill", str(pid), str(int(signum)))
        except _Gone:
            raise ProcessLookupError(f"pid {pid}: the container ended") from None

    def kill_server(self) -> None:
        """SIGKILL from the engine: the server is the container's first process, which no signal sent from
        inside its namespace can kill."""
        with contextlib.suppress(Exception):
            self.server.container.kill(signal="SIGKILL")

    def shm_files(self, prefix: str) -> dict[str, int]:
        try:
            return dict(self._run("shm-files", prefix))
        except _Gone:
            return {}

    def shm_write(self, key: str, data: bytes) -> None:
        if len(data) > SHM_ARG_BYTES:
            raise InsideError(f"a region written into a container holds at most {SHM_ARG_BYTES} bytes, not "
                              f"{len(data)}", where=key)
        self._run("shm-write", key, base64.b64encode(data).decode())

    def shm_read(self, key: str) -> bytes | None:
        text = self._run("shm-read", key)
        return None if text is None else base64.b64decode(text)

    def shm_remove(self, key: str) -> None:
        with contextlib.suppress(_Gone):
            self._run("shm-remove", key)

    def python(self) -> dict[str, Any]:
        """The container's python3 (the image's, first on its PATH, which its stubs run)."""
        return dict(self._run("python"))


class _Gone(Exception):
    """The container does not run (nothing runs there any more)."""
