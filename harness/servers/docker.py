"""The docker runner: the cell's server in a container of a real Docker engine (docker SDK).

The pytest process stays on the host and talks to the container's ports, which are published on
127.0.0.1 only, on host ports the engine picks (read back after start). The model repository is
mounted read-only; the container is unprivileged with every capability dropped; GPU cells ask for
GPUs with a device request. Every container carries labels (run, cell, owner pid on this host):
containers left by an earlier run whose owner process is gone are removed before a new one starts,
and the container of a cell is stopped and removed in a ``finally``.
"""

from __future__ import annotations

import contextlib
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
from harness.servers import Ports, Server, ServerError
from harness.servers.options import ServerOptions, server_env

LABEL = "org.triton-matrix"
RUN_ID_ENV = "TRITON_MATRIX_RUN_ID"
CONTAINER_PORTS = Ports(http=8000, grpc=8001, metrics=8002)
LOG_SYNC_S = 10.0  # at most this long for a log mark to come through the engine's copy of the output


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


def run_id() -> str:
    return os.environ.setdefault(RUN_ID_ENV, uuid.uuid4().hex[:12])


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def remove_leftovers(client: Any) -> list[str]:
    """Remove containers of earlier runs on this host whose owner process is gone."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{LABEL}.owner"}):
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
        image_kind: str = "offline",
        shm_size: str = "256m",
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
        self.image_kind = image_kind
        self.shm_size = shm_size
        self.stop_timeout = stop_timeout
        self.extra_args = tuple(extra_args)
        self.extra_backends = dict(extra_backends or {})
        self.client = client
        self.container: Any = None
        self.image: str | None = None
        self._log_thread: threading.Thread | None = None
        self._removed = False

    def command(self) -> list[str]:
        options = ServerOptions(repository="/models", backend_directory="/opt/tritonserver/backends",
                                ports=CONTAINER_PORTS, address="0.0.0.0",
                                stop_timeout=self.stop_timeout, extra_args=self.extra_args)
        return ["tritonserver", *options.to_args()]

    def start(self) -> None:
        import docker.errors
        import docker.types

        self.client = self.client or engine()
        self._removed = False
        remove_leftovers(self.client)
        self.image, python = images.server_image(self.client, self.release, self.image_kind)
        if python != self.cell.python:
            raise NotApplicable(f"the {self.image_kind} image of {self.release.name} runs Python {python}, "
                                f"not {self.cell.python}")
        volumes = {str(self.repository): {"bind": "/models", "mode": "ro"}}
        for name, path in self.extra_backends.items():
            volumes[str(path)] = {"bind": f"/opt/tritonserver/backends/{name}", "mode": "ro"}
        device_requests = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])] if self.cell.gpu else None
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
                ports={f"{port}/tcp": ("127.0.0.1", None) for port in
                       (CONTAINER_PORTS.http, CONTAINER_PORTS.grpc, CONTAINER_PORTS.metrics)},
                volumes=volumes,
                environment=server_env(dict(os.environ)),
                shm_size=self.shm_size,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                privileged=False,
                device_requests=device_requests,
            )
            self.container.start()
        except docker.errors.APIError as exc:
            reason = str(exc.explanation or exc).strip().splitlines()[0]
            if self.cell.gpu:
                raise NotApplicable(f"the Docker engine gives no GPU: {reason}") from None
            raise ServerError(f"the container did not start: {reason}", where=self.image,
                              fix="see 'docker run' with the same image") from None
        self._log_thread = threading.Thread(target=self._stream_log, name="container-log", daemon=True)
        self._log_thread.start()
        self.container.reload()
        self.ports = Ports(**{
            name: int(self.container.ports[f"{port}/tcp"][0]["HostPort"])
            for name, port in (("http", CONTAINER_PORTS.http), ("grpc", CONTAINER_PORTS.grpc),
                               ("metrics", CONTAINER_PORTS.metrics))
        })

    def _stream_log(self) -> None:
        with open(self.log_path, "ab") as fh:
            for chunk in self.container.logs(stream=True, follow=True):
                fh.write(chunk)
                fh.flush()

    def sync_log(self) -> None:
        """Wait until the log file holds what the server wrote so far: the engine copies the container's
        output asynchronously, so a load's response can come before the lines it logged (a refused
        config's parser message was missing from a load's log). A mark written to the server's own
        stdout comes through after them: once it is in the file, so are they. Bounded; a container
        without a shell, or one that ended, is not waited for."""
        mark = f"triton-matrix log mark {uuid.uuid4().hex}"
        offset = self.log_offset()
        try:
            written = self.container.exec_run(["sh", "-c", f"echo '{mark}' >> /proc/1/fd/1"]).exit_code == 0
        except Exception:  # noqa: BLE001 - a container that is gone has nothing more to copy
            written = False
        deadline = time.monotonic() + LOG_SYNC_S
        while written and mark not in self.log_since(offset) and time.monotonic() < deadline:
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
            return "killed: out of memory"
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
