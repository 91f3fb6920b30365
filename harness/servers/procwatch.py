"""Where a server runs, read from ``/proc`` and ``/dev/shm``: its processes, the ends of its python
backend stubs, its shared-memory files, the Python its stubs run.

Standard library only, no harness import, Python 3.8+: the local runner imports this module, the docker
runner runs this very file inside the container (``python3 -c <this source> <command> ...``, as the
server's user), so a case reads a container the way it reads this machine, with the pids the server
itself sees. Each command prints one JSON document; ``watch`` prints one JSON line per stub that ended.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from typing import Iterable

PROC = "/proc"
SHM = "/dev/shm"
SERVER_COMM = "tritonserver"
STUB_COMM = "triton_python_b"  # the kernel keeps 15 characters of triton_python_backend_stub
STUB = "triton_python_backend_stub"
POLL_S = 0.05
DISCOVER_EVERY = 10  # polls between scans of /proc for new stubs


def stat(pid: int) -> dict | None:
    """``/proc/<pid>/stat`` as a dict (None when the process is gone). ``exit_status``: the wait status
    of a zombie (proc(5) field 52; 0 for a process that runs, or where this reader may not see it)."""
    try:
        with open(f"{PROC}/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    rest = text[text.rfind(")") + 2:].split()  # field N of proc(5) at index N - 3
    return {"pid": pid, "comm": text[text.find("(") + 1: text.rfind(")")], "state": rest[0],
            "ppid": int(rest[1]), "starttime": int(rest[19]),
            "exit_status": int(rest[49]) if len(rest) >= 50 else None}


def argv(pid: int) -> list:
    try:
        with open(f"{PROC}/{pid}/cmdline", "rb") as fh:
            return [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return []


def pids() -> list:
    return [int(name) for name in os.listdir(PROC) if name.isdigit()]


def processes() -> list:
    """Every process, each as :func:`stat` with its ``argv`` (empty for a zombie)."""
    found = []
    for pid in pids():
        fields = stat(pid)
        if fields is not None:
            found.append({**fields, "argv": argv(pid)})
    return found


def server_pid() -> int | None:
    """The oldest ``tritonserver`` (inside a container, the only one)."""
    return server_among((p["pid"], p["comm"]) for p in processes())


def server_among(pairs: Iterable) -> int | None:
    """The oldest ``tritonserver`` of ``(pid, comm)`` pairs."""
    found = [pid for pid, comm in pairs if comm == SERVER_COMM]
    return min(found) if found else None


def stub_identity(args: list) -> tuple:
    """(model, instance) of a stub from its command line: ``<repo>/<model>/<version>/model.py ... <instance>``."""
    model = os.path.basename(os.path.dirname(os.path.dirname(args[1]))) if len(args) > 1 else "?"
    return model, (args[8] if len(args) > 8 else "?")


class StubWatch:
    """The stubs of ``server`` that ended since the last :meth:`poll`, with their wait status."""

    def __init__(self, server: int) -> None:
        self.server = server
        self.known: dict = {}  # pid -> (model, instance)
        self.polls = 0

    def _live_stub(self, fields: dict | None) -> bool:
        return bool(fields) and fields["comm"] == STUB_COMM and fields["ppid"] == self.server \
            and fields["state"] != "Z"

    def poll(self) -> list:
        if self.polls % DISCOVER_EVERY == 0:
            for pid in pids():
                if pid not in self.known and self._live_stub(stat(pid)):
                    self.known[pid] = stub_identity(argv(pid))
        self.polls += 1
        ended = []
        for pid, (model, instance) in list(self.known.items()):
            fields = stat(pid)
            if self._live_stub(fields):
                continue
            # None: the server reaped it before its status could be read
            status = fields["exit_status"] if fields is not None and fields["ppid"] == self.server else None
            ended.append({"pid": pid, "model": model, "instance": instance, "status": status})
            del self.known[pid]
        return ended


def shm_files(prefix: str) -> dict:
    """{name: size} of the files in /dev/shm whose name starts with ``prefix``."""
    found = {}
    for name in os.listdir(SHM):
        if name.startswith(prefix):
            try:
                found[name] = os.stat(os.path.join(SHM, name)).st_size
            except OSError:
                continue
    return found


def _shm_path(name: str) -> str:
    if not name or "/" in name.strip("/") or name.strip("/") in (".", ".."):
        raise ValueError(f"{name!r} is not a shared-memory key (one name, e.g. /region)")
    return os.path.join(SHM, name.strip("/"))


def shm_write(name: str, data: bytes) -> None:
    """Create (or overwrite) the region ``name`` holding ``data``, as shm_open + ftruncate + write would."""
    fd = os.open(_shm_path(name), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.ftruncate(fd, len(data))
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def shm_read(name: str) -> bytes | None:
    try:
        with open(_shm_path(name), "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def shm_remove(name: str) -> None:
    try:
        os.unlink(_shm_path(name))
    except FileNotFoundError:
        pass


def python() -> dict:
    """The Python of this process and the numpy it imports (the server's stubs run the same)."""
    info = {"version": "%d.%d.%d" % sys.version_info[:3], "prefix": sys.prefix, "numpy": None, "numpy_file": None}
    try:
        import numpy
    except ImportError:
        return info
    return {**info, "numpy": numpy.__version__, "numpy_file": numpy.__file__}


def answer(output: str, code: int, command: str) -> object:
    """What :func:`main` said to ``command``: its result; an error of its as the exception it was
    (ProcessLookupError, ...), an unreadable answer as a RuntimeError."""
    try:
        said = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"procwatch {command}: exit code {code}, said {output[-500:]!r}") from None
    if "raised" in said:
        kind = {"ProcessLookupError": ProcessLookupError, "PermissionError": PermissionError,
                "FileNotFoundError": FileNotFoundError, "ValueError": ValueError}.get(said.get("type"), OSError)
        raise kind(said["raised"])
    return said.get("result")


def main(args: list) -> int:
    """The commands the docker runner runs in the container: ``{"result": ...}`` out (bytes as base64),
    or ``{"raised": ..., "type": ...}`` and exit code 1."""
    try:
        return _run(args[0], args[1:])
    except (OSError, ValueError) as exc:
        print(json.dumps({"raised": str(exc), "type": type(exc).__name__}))
        return 1


def _run(command: str, rest: list) -> int:
    if command == "processes":
        result: object = processes()
    elif command == "server-pid":
        result = server_pid()
    elif command == "kill":
        os.kill(int(rest[0]), int(rest[1]))
        result = None
    elif command == "shm-files":
        result = shm_files(rest[0])
    elif command == "shm-write":
        shm_write(rest[0], base64.b64decode(rest[1]))
        result = None
    elif command == "shm-read":
        data = shm_read(rest[0])
        result = None if data is None else base64.b64encode(data).decode()
    elif command == "shm-remove":
        shm_remove(rest[0])
        result = None
    elif command == "python":
        result = python()
    elif command == "watch":  # until the container ends: one line per stub that ended
        server = int(rest[0]) if rest and rest[0] != "auto" else None
        while server is None:
            server = server_pid()
            time.sleep(POLL_S)
        watch = StubWatch(server)
        print(json.dumps({"watching": server}), flush=True)
        while True:
            for end in watch.poll():
                print(json.dumps(end), flush=True)
            time.sleep(POLL_S)
    else:
        raise ValueError(f"unknown command {command!r}")
    print(json.dumps({"result": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
