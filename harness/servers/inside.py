"""Where a server runs, as its cases look at it: its processes (its python backend stubs, their ends),
its shared memory, the Python its stubs run; one interface, whatever runs the server.

Each runner gives its server's :class:`Inside`: the local one reads this machine (``LocalInside``), the
docker one runs :mod:`harness.servers.procwatch` in the container as the server's user
(``DockerInside``). Pids are the ones the server sees (a model's ``os.getpid()`` matches them).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from harness.compat import KW_ONLY
from harness.errors import HarnessError
from harness.servers.procwatch import STUB, STUB_COMM, stub_identity


class InsideError(HarnessError):
    """What runs the server could not say what runs there (the engine refused, a tool is missing)."""


@dataclass(frozen=True, **KW_ONLY)
class Proc:
    """A process where the server runs. ``exit_status``: a zombie's wait status (WTERMSIG, WEXITSTATUS)."""

    pid: int
    ppid: int
    state: str
    starttime: int
    comm: str
    argv: tuple[str, ...]
    exit_status: int | None = None

    @classmethod
    def of(cls, fields: dict[str, Any]) -> Proc:
        """From :func:`harness.servers.procwatch.processes`' JSON."""
        return cls(pid=int(fields["pid"]), ppid=int(fields["ppid"]), state=str(fields["state"]),
                   starttime=int(fields["starttime"]), comm=str(fields["comm"]),
                   argv=tuple(str(a) for a in fields.get("argv") or ()), exit_status=fields.get("exit_status"))

    @property
    def zombie(self) -> bool:
        return self.state == "Z"

    @property
    def is_stub(self) -> bool:
        """A python backend stub (a zombie has lost its command line but keeps the stub's name)."""
        if self.argv:
            return os.path.basename(self.argv[0]) == STUB
        return self.comm == STUB_COMM

    @property
    def model(self) -> str | None:
        """The model a stub serves: its second argument is ``<repository>/<model>/<version>/model.py``."""
        if not self.is_stub or len(self.argv) < 2:
            return None
        return stub_identity(list(self.argv))[0]


class Inside(ABC):
    """What runs where one server runs, read the same way on every runner."""

    @abstractmethod
    def processes(self) -> list[Proc]:
        """Every process there (none once the server's container is gone)."""

    @abstractmethod
    def server_pid(self) -> int | None:
        """The server's pid as the server sees it; None while it does not run."""

    @abstractmethod
    def signal(self, pid: int, signum: int) -> None:
        """Send ``signum`` to ``pid`` (a pid of :meth:`processes`); ProcessLookupError when it is gone."""

    @abstractmethod
    def kill_server(self) -> None:
        """SIGKILL the server's process alone (its stubs are left to notice), not through the harness."""

    @abstractmethod
    def shm_files(self, prefix: str) -> dict[str, int]:
        """{name: size} of the server's /dev/shm files whose name starts with ``prefix``."""

    @abstractmethod
    def shm_write(self, key: str, data: bytes) -> None:
        """Create the region ``key`` (``/name``) in the server's /dev/shm holding ``data``: a client
        region the server can open, as a client process beside the server makes it."""

    @abstractmethod
    def shm_read(self, key: str) -> bytes | None:
        """The bytes of region ``key``; None when there is none."""

    @abstractmethod
    def shm_remove(self, key: str) -> None:
        """Remove region ``key`` (no error when it is gone)."""

    @abstractmethod
    def python(self) -> dict[str, Any]:
        """The Python the server's stubs run and the numpy it imports: ``version``, ``prefix``, ``numpy``,
        ``numpy_file``."""

    def children(self) -> list[Proc]:
        """The server's child processes, zombies included."""
        procs = self.processes()
        server = self.server_pid()
        return [p for p in procs if server is not None and p.ppid == server]

    def stubs(self, model: str | None = None) -> list[Proc]:
        """The server's python backend stubs that run (of ``model`` if given)."""
        return [p for p in self.children() if p.is_stub and not p.zombie and model in (None, p.model)]
