"""A cell worker's one server over its whole run: started on first use, started again after a crash, with
clients of its current generation (a restarted server has new ports).

One crash costs one case, not the cell: before a case the plugin asks :meth:`CellServer.ensure_alive`;
after :data:`RESTART_TRIES` failed restarts in a row the server is gone and every later case says why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from harness.client import Client
from harness.errors import HarnessError, NotApplicable
from harness.matrix import Cell
from harness.servers import Server, ServerError, ServerExited, VersionMismatch
from harness.servers.factory import CellServers

RESTART_TRIES = 3  # failed restarts in a row before the remaining cases are errors


class CellServer:
    def __init__(self, cell: Cell, expected_version: str, prepare: Callable[[], CellServers], *, log_path: Path,
                 workdir: Path, request_timeout: float) -> None:
        self.cell = cell
        self.expected_version = expected_version
        self._prepare = prepare
        self._servers: CellServers | None = None
        self.log_path = log_path
        self.workdir = workdir
        self.request_timeout = request_timeout
        self.server: Server | None = None
        self.gone: ServerError | None = None  # why the server cannot be started (again)
        self.restarts = 0
        self._failed_restarts = 0
        self._clients: dict[str, tuple[int, Client]] = {}

    @property
    def servers(self) -> CellServers:
        """The rendered repository and built backends, made once (also for the cases' spare servers)."""
        if self._servers is None:
            try:
                self._servers = self._prepare()
            except HarnessError as exc:
                raise ServerError(str(exc)) from None
        return self._servers

    def start(self) -> Server:
        """Start it; a server without the cell's backend is not applicable, another version an error."""
        if self.gone:  # a re-run (pytest-rerunfailures clears cached fixture errors) does not try again
            raise _again(self.gone)
        server = self.servers.create(log_path=self.log_path, workdir=self.workdir)
        self.server = server
        try:
            server.start_and_wait()
            available = server.backends()
            if self.cell.backend not in ("custom", *available):
                raise NotApplicable(f"the server has no {self.cell.backend} backend (its backend directory "
                                    f"holds: {', '.join(available) or 'nothing'})")
            if server.version != self.expected_version:
                raise VersionMismatch(f"server reports version {server.version} but matrix.toml says "
                                      f"{self.expected_version} for {self.cell.triton}",
                                      fix="correct the release table in matrix.toml")
        except ServerError as exc:
            self.gone = exc
            self.close()
            raise
        except BaseException:
            self.close()
            raise
        return server

    def ensure_alive(self) -> bool:
        """Start the server again if it died; True when it did (nothing is loaded on it then)."""
        if self.gone:
            raise _again(self.gone)
        server = self.server
        if server is None or server.alive:
            return False
        try:
            server.restart()
        except ServerError as exc:
            self._failed_restarts += 1
            if self._failed_restarts >= RESTART_TRIES:
                self.gone = ServerExited(f"the server could not be started again ({RESTART_TRIES} tries in a row): {exc}")
                self.gone.saturated, self.gone.evidence = exc.saturated, exc.evidence
            raise
        self._failed_restarts = 0
        self.restarts += 1
        return True

    def client(self, protocol: str) -> Client:
        """A client of the server as it is now, made anew after a restart."""
        server = self.server
        if server is None:
            raise ServerExited("the cell's server is not running")
        cached = self._clients.get(protocol)
        if cached is not None and cached[0] == server.generation:
            return cached[1]
        if cached is not None:
            with contextlib.suppress(Exception):
                cached[1].close()
        timeout = self.request_timeout
        raw = (server.http_client(network_timeout=timeout, connection_timeout=timeout) if protocol == "http"
               else server.grpc_client())
        made = Client(protocol, raw, timeout=timeout)
        self._clients[protocol] = (server.generation, made)
        return made

    def close(self) -> None:
        """Kill it (the cases are done; nothing asserts a graceful end of this server: cases that do start
        a server of their own), which saves the ~10 s a python backend's stop can take."""
        for _, made in self._clients.values():
            with contextlib.suppress(Exception):
                made.close()
        self._clients.clear()
        if self.server is not None:
            self.server.kill("the cell's cases are done")
            self.server.stop()
            self.server = None


def _again(gone: ServerError) -> ServerExited:
    """The error of a server that is gone, for every later case: with the first failure's evidence (a
    start that expired on a saturated machine makes each of those cases run again alone)."""
    again = ServerExited(str(gone))
    again.saturated, again.evidence = gone.saturated, gone.evidence
    return again
