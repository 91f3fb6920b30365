"""The run's reaper: the containers of a run are removed when the run dies, however it dies.

Like testcontainers' Ryuk, bound to the run's life by the kernel rather than by cleanup code that a
SIGKILL skips: a process in a session of its own (a Ctrl-C or a killed process group leaves it be)
that holds the read end of a pipe whose write end only the run's top harness process holds (pipes are
close-on-exec: no child inherits it), and a pidfd of that process's parent (nox, or the shell: the
harness dies with its parent, but only after its graceful stop). When the pipe reads end-of-file or
the parent ends, it removes every container labelled with the run's id, again each ``SWEEP_S`` until
the run's top process is gone and none turned up for ``SETTLE_S`` (a cell mid-start still makes one),
then exits. A run that ends normally writes ``DONE`` first: one sweep, no wait.

The reaper talks to the engine's HTTP API with the standard library (any Python of the run can start
it: ``python -m harness cell`` needs no docker SDK). Leftovers of runs whose reaper was itself killed
are still removed by the label sweep at start (``harness.servers.docker.remove_leftovers``).
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import select
import socket
import subprocess
import sys
import time
import urllib.parse

from harness import PROJECT_ROOT, processes

LABEL = "org.triton-matrix"  # also harness.servers.docker.LABEL (which imports it from here)
RUN_ID_ENV = "TRITON_MATRIX_RUN_ID"
REAPER_ENV = "TRITON_MATRIX_REAPER"  # the run id a reaper already covers: descendants start none
DONE = b"done\n"
SWEEP_S = 0.5
SETTLE_S = 3.0
GIVE_UP_S = 120.0  # a run whose processes never end is left to the next run's label sweep

_owned: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}  # run id -> (write end, reaper)


def run_id() -> str:
    import uuid

    return os.environ.setdefault(RUN_ID_ENV, uuid.uuid4().hex[:12])


def ensure(run: str | None = None) -> None:
    """A reaper for ``run`` (default: this process's run id), unless an ancestor already started one."""
    run = run or run_id()
    if os.environ.get(REAPER_ENV) == run or run in _owned:
        return
    start(run)
    os.environ[REAPER_ENV] = run


def start(run: str) -> subprocess.Popen[bytes]:
    """Start the reaper of ``run``, bound to this process and to this process's parent."""
    read, write = os.pipe()
    parent = os.getppid()
    pidfd = -1
    if hasattr(os, "pidfd_open") and parent > 1:
        with contextlib.suppress(OSError):
            pidfd = os.pidfd_open(parent)
            if os.getppid() != parent:  # it ended before the pidfd was taken: the pidfd may name another
                os.close(pidfd)
                pidfd = -1
    fds = (read,) if pidfd < 0 else (read, pidfd)
    try:
        proc = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "harness.servers.reaper", run, str(pidfd)],
            stdin=read, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=fds,
            start_new_session=True, cwd=str(PROJECT_ROOT))
    finally:
        for fd in fds:
            os.close(fd)
    processes.spare(proc.pid)  # not an orphan for the cell runner to end: it outlives the cell on purpose
    _owned[run] = (write, proc)
    if len(_owned) == 1:
        atexit.register(_done)
    return proc


def _done() -> None:
    """A normal exit: the containers are already removed; the reaper checks once and goes."""
    for write, _proc in _owned.values():
        with contextlib.suppress(OSError):
            os.write(write, DONE)
            os.close(write)
    _owned.clear()


# -- the reaper process ---------------------------------------------------------------------------
class Engine:
    """The few calls of the Docker engine API the reaper needs, over DOCKER_HOST (unix or tcp)."""

    def __init__(self, host: str | None = None) -> None:
        self.host = host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    def _connection(self) -> http.client.HTTPConnection:
        url = urllib.parse.urlparse(self.host)
        if url.scheme == "unix":
            return _UnixConnection(url.path)
        return http.client.HTTPConnection(url.hostname or "localhost", url.port or 2375, timeout=30)

    def _call(self, method: str, path: str) -> tuple[int, bytes]:
        conn = self._connection()
        try:
            conn.request(method, path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def containers(self, run: str) -> list[str]:
        filters = json.dumps({"label": [f"{LABEL}.run={run}"]})
        status, body = self._call("GET", "/containers/json?all=1&filters=" + urllib.parse.quote(filters))
        return [c["Id"] for c in json.loads(body)] if status == 200 else []

    def remove(self, container: str) -> None:
        self._call("DELETE", f"/containers/{container}?force=1&v=1")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def sweep(engine: Engine, run: str) -> int:
    """Remove the run's containers; how many there were."""
    found = 0
    with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
        for container in engine.containers(run):
            found += 1
            with contextlib.suppress(OSError, http.client.HTTPException):
                engine.remove(container)
    return found


def reap(run: str, pipe: int, pidfd: int, engine: Engine) -> None:
    """Wait for the run's end (the pipe, or its parent's pidfd), then sweep until it is quiet."""
    poller = select.poll()
    poller.register(pipe, select.POLLIN | select.POLLHUP)
    if pidfd >= 0:
        poller.register(pidfd, select.POLLIN)
    said = b""
    pipe_open = True
    while True:
        events = dict(poller.poll())
        if pipe in events:
            chunk = os.read(pipe, 64)
            said += chunk
            if not chunk:
                pipe_open = False
                break
        if pidfd in events:
            break
    if said.endswith(DONE):
        sweep(engine, run)
        return
    poller = select.poll()
    if pipe_open:
        poller.register(pipe, select.POLLIN | select.POLLHUP)
    started = quiet_since = time.monotonic()
    while time.monotonic() - started < GIVE_UP_S:
        if sweep(engine, run):
            quiet_since = time.monotonic()
        if pipe_open and poller.poll(0) and not os.read(pipe, 64):
            pipe_open = False
        if not pipe_open and time.monotonic() - quiet_since >= SETTLE_S:
            return
        time.sleep(SWEEP_S)


def main(argv: list[str]) -> int:
    run, pidfd = argv[0], int(argv[1])
    reap(run, sys.stdin.fileno(), pidfd, Engine())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
