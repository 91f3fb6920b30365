"""A running Triton server, whatever started it.

:class:`Server` holds what every runner shares: the addresses, readiness through tritonclient with an
injectable clock, bounded model loads that watch the server log for the failures the server itself
never reports (a python backend stub that cannot start hangs the load forever), and the log. Each
runner (``local``: the wheel's ``tritonserver`` as a child process; ``docker``: a container) adds how
to start and stop it.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import admission
from harness.compat import KW_ONLY
from harness.deadlines import Deadline, Probe
from harness.errors import HarnessError, NotApplicable
from harness.servers.inside import Inside
from harness.servers.options import Ports

__all__ = [
    "LoadResult",
    "LoadTimeout",
    "NotApplicable",
    "PortTaken",
    "Ports",
    "Server",
    "ServerError",
    "ServerExited",
    "ServerNotReady",
    "StubCannotStart",
    "UnloadTimeout",
    "VersionMismatch",
]

# Log lines that mean a load will never finish, with the reason the user should read.
FATAL_LOG_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"triton_python_backend_stub: error while loading shared libraries: (\S+?):"),
        "the python backend stub cannot load {0} (its Python's lib/ is not on LD_LIBRARY_PATH)",
    ),
)


ERROR_LINE = re.compile(r"^E\d{4} |error|unrecognized|cannot|failed|already in use", re.IGNORECASE)
# Said by every CPU-only server at start; never the reason for anything.
NOISE = re.compile(r"CudaDriverHelper|NVML|DCGM|pinned memory|CUDA driver")


class ServerError(HarnessError):
    """The server did not start, died, or hung; the message carries the reason and the log's tail.

    ``saturated``: a deadline expired while the machine was saturated (the failure may be the load's,
    not the server's: the cell runs it again alone); ``evidence``: how busy the machine was.
    """

    saturated = False
    evidence = ""


class ServerNotReady(ServerError):
    """It did not answer ready within the start timeout."""


class PortTaken(ServerNotReady):
    """A port chosen for it was taken before it could bind it."""


class ServerExited(ServerError):
    """It ended (before it was ready, or during the cell)."""


class LoadTimeout(ServerError):
    """A model load never answered; the server was killed, since it can no longer unload or stop."""


class StubCannotStart(ServerError):
    """The log says a python backend stub cannot start: the load would never answer."""


class UnloadTimeout(ServerError):
    """An unload did not finish in time (the model's requests never ended)."""


class VersionMismatch(ServerError):
    """The live server is another version than the matrix says."""


DEADLINE_ERRORS = (ServerNotReady, LoadTimeout, UnloadTimeout)  # a deadline that expired: maybe the load's doing
SERVER_ERRORS = (ServerError, ServerNotReady, PortTaken, ServerExited, LoadTimeout, StubCannotStart, UnloadTimeout,
                 VersionMismatch)


@dataclass(frozen=True, **KW_ONLY)
class LoadResult:
    """What one model load said: ``error`` is the load response's message (None when it loaded)."""

    model: str
    error: str | None
    log: str


class Server:
    """Base of the runners. Subclasses set ``host``, ``ports`` and implement the process hooks."""

    host = "127.0.0.1"
    name = "server"

    def __init__(self, *, log_path: Path, start_timeout: float = 60.0, load_timeout: float = 60.0) -> None:
        self.log_path = Path(log_path)
        self.start_timeout = start_timeout
        self.load_timeout = load_timeout
        self.ports: Ports | None = None
        self.metadata: dict[str, Any] = {}
        self.broken: str | None = None
        self.generation = 0  # how often it was (re)started: clients of an older generation are stale
        # The python backend's shared-memory regions are named with this (only this server's are its)
        self.shm_prefix = f"tm{uuid.uuid4().hex[:10]}_"

    # -- hooks for runners -------------------------------------------------------------------------
    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def kill(self, reason: str) -> None:
        """Stop hard; later requests fail with ``reason``."""
        raise NotImplementedError

    def exit_status(self) -> str | None:
        """None while running, else how the server ended (e.g. 'exit code 1', 'killed by SIGKILL')."""
        raise NotImplementedError

    def backends(self) -> list[str]:
        """The backends this server can load: the folders of its backend directory."""
        raise NotImplementedError

    def root_pids(self) -> list[int]:
        """The server's process as this machine sees it (its stubs are its children); none when unknown."""
        return []

    def probe(self) -> Probe:
        """What shows this server moving: its and its stubs' CPU and run-queue time, its log."""
        return Probe(roots=self.root_pids, logs=lambda: [self.log_path])

    # -- shared ------------------------------------------------------------------------------------
    @property
    def http_url(self) -> str:
        return f"{self.host}:{self._ports.http}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self._ports.grpc}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self._ports.metrics}/metrics"

    @property
    def _ports(self) -> Ports:
        if self.ports is None:
            raise ServerError(f"{self.name} is not started")
        return self.ports

    @property
    def version(self) -> str | None:
        return self.metadata.get("version")

    def http_client(self, **kwargs: Any) -> Any:
        import tritonclient.http as httpclient

        kwargs.setdefault("network_timeout", self.load_timeout)
        kwargs.setdefault("connection_timeout", self.load_timeout)
        return httpclient.InferenceServerClient(self.http_url, **kwargs)

    def grpc_client(self, **kwargs: Any) -> Any:
        import tritonclient.grpc as grpcclient

        return grpcclient.InferenceServerClient(self.grpc_url, **kwargs)

    def wait_ready(
        self,
        timeout: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Poll until the server answers ready; fail early if it exits. Returns its ``/v2`` metadata."""
        timeout = self.start_timeout if timeout is None else timeout
        deadline = Deadline(timeout, self.probe(), clock=clock)
        client = self.http_client(network_timeout=2.0, connection_timeout=2.0)
        try:
            while True:
                ended = self.exit_status()
                if ended is not None:
                    raise ServerExited(f"{self.name} exited before it was ready ({ended}){self.tail_note()}")
                try:
                    if client.is_server_ready():
                        self.metadata = client.get_server_metadata()
                        return self.metadata
                except Exception:
                    pass
                if deadline.poll() is None:
                    raise _expired(ServerNotReady, f"{self.name} not ready within {timeout:g} s (given up after "
                                   f"{deadline.elapsed():.0f} s; {deadline.evidence()}){self.tail_note()}", deadline)
                sleep(0.05)
        finally:
            client.close()

    def start_and_wait(self, attempts: int = 3) -> dict[str, Any]:
        """Start and wait until ready; a port taken between choosing it and binding it is retried."""
        for attempt in range(1, attempts + 1):
            offset = self.log_offset()
            self.start()
            try:
                return self.wait_ready()
            except ServerError as exc:
                lost_port = "already in use" in self.log_since(offset) and self.exit_status() is not None
                self.stop()
                if not lost_port:
                    raise
                if attempt == attempts:
                    raise PortTaken(str(exc)) from None
        raise AssertionError("unreachable")

    def restart(self) -> None:
        """Stop what is left of it and start it again (new ports): the cell goes on after a crash."""
        self.stop()
        self.broken = None
        self.generation += 1
        self.start_and_wait()

    @property
    def alive(self) -> bool:
        return not self.broken and self.exit_status() is None

    def check_alive(self) -> None:
        if self.broken:
            raise ServerExited(self.broken)
        ended = self.exit_status()
        if ended is not None:
            self.broken = f"{self.name} ended during the cell ({ended}){self.tail_note()}"
            raise ServerExited(self.broken)

    @property
    def inside(self) -> Inside:
        """Where it runs, as its cases look at it: processes, stubs, shared memory (one interface for
        every runner, :mod:`harness.servers.inside`)."""
        raise NotImplementedError

    def ended_stubs(self, since: float, model: str | None = None) -> list[str]:
        """Python backend stubs (of ``model``, or any) that ended abnormally since ``since`` (monotonic
        seconds), as sentences naming the pid and how it ended (each runner watches its stubs)."""
        return []

    def live_stubs(self, model: str) -> list[int]:
        """The pids of ``model``'s python backend stubs that still run: what an unload waits for before
        it is over (none once the server ended)."""
        if self.exit_status() is not None:
            return []
        return [p.pid for p in self.inside.stubs(model)]

    def load(self, model: str, *, config: str | None = None, files: dict[str, bytes] | None = None,
             timeout: float | None = None) -> LoadResult:
        """Load ``model`` through the repository API, bounded by a deadline judged by progress.

        A load that never answers is watched through the log: a fatal line (a stub that cannot start)
        or the expired deadline kills the server, since it can no longer unload or stop by itself.
        """
        self.check_alive()
        timeout = self.load_timeout if timeout is None else timeout
        offset = self.log_offset()

        def do_load(client: Any) -> None:
            client.load_model(model, config=config, files=files)

        error, deadline = self._bounded(do_load, timeout, watch_log_from=offset)
        if deadline is not None:  # expired, or the log or the server said it never will answer
            fatal = self.fatal_reason(self.log_since(offset))
            ended = self.exit_status()
            # The kind is decided before the kill below, which ends the server in every case.
            kind: type[ServerError]
            if fatal:
                kind, reason = StubCannotStart, fatal
            elif ended is not None:
                kind, reason = ServerExited, f"{self.name} ended while loading {model!r} ({ended})"
            else:
                kind = LoadTimeout
                reason = (f"loading {model!r} did not finish within {timeout:g} s (model stuck in LOADING, "
                          f"given up after {deadline.elapsed():.0f} s; {deadline.evidence()})")
            self.kill(reason)
            raise _expired(kind, f"{reason}; the server was killed{self.tail_note()}", deadline)
        self.sync_log()
        return LoadResult(model=model, error=error, log=self.log_since(offset))

    def unload(self, model: str, *, timeout: float | None = None) -> None:
        """Unload ``model``; bounded, since the server waits for the model's in-flight requests."""
        self.check_alive()

        def do_unload(client: Any) -> None:
            client.unload_model(model, unload_dependents=False)

        error, deadline = self._bounded(do_unload, self.load_timeout if timeout is None else timeout)
        if deadline is not None:
            raise _expired(UnloadTimeout, f"unloading {model!r} did not finish within {deadline.seconds:g} s "
                           f"(given up after {deadline.elapsed():.0f} s; {deadline.evidence()})", deadline)
        if error is not None:
            raise UnloadTimeout(f"unloading {model!r} failed: {error}")

    def _bounded(self, call: Callable[[Any], None], timeout: float,
                 watch_log_from: int | None = None) -> tuple[str | None, Deadline | None]:
        """Run ``call(http_client)`` in a thread of its own, in one of the run's load slots, under a
        deadline judged by this server's progress. Returns (the server's error message or None, None),
        or (None, the deadline) when it expired, the server ended, or (``watch_log_from``) its log
        says the call will never answer."""
        result: dict[str, str | None] = {}
        with admission.admitted():  # waiting for a slot counts against no deadline
            deadline = Deadline(timeout, self.probe())
            client = self.http_client(network_timeout=deadline.cap + 5, connection_timeout=deadline.cap + 5)

            def run() -> None:
                try:
                    call(client)
                    result["error"] = None
                except Exception as exc:
                    result["error"] = _message(exc)
                finally:
                    client.close()

            worker = threading.Thread(target=run, name="bounded-server-call", daemon=True)
            worker.start()
            while worker.is_alive():
                worker.join(0.1)
                if not worker.is_alive():
                    break
                fatal = watch_log_from is not None and self.fatal_reason(self.log_since(watch_log_from))
                if fatal or self.exit_status() is not None or deadline.poll() is None:
                    return None, deadline
        return result.get("error"), None

    # -- log ---------------------------------------------------------------------------------------
    def sync_log(self) -> None:
        """Return once the log file holds every line the server wrote so far. A local server writes
        its log file itself, so there is nothing to wait for; a container's log is copied by the
        engine, later (:meth:`harness.servers.docker.DockerServer.sync_log`)."""

    def log_offset(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_since(max(0, self.log_offset() - 64 * 1024))
        return "\n".join(text.splitlines()[-lines:])

    def tail_note(self, lines: int = 10) -> str:
        """The log's error lines and its last lines, for a failure message."""
        text = self.log_since(max(0, self.log_offset() - 256 * 1024))
        errors = [ln for ln in text.splitlines() if ERROR_LINE.search(ln) and not NOISE.search(ln)][-8:]
        tail = [ln for ln in text.splitlines()[-lines:] if ln not in errors]
        if not errors and not tail:
            return f"; log {self.log_path} is empty"
        shown = "\n".join(errors + (["..."] if errors and tail else []) + tail)
        return f"; log {self.log_path}:\n{shown}"

    @staticmethod
    def fatal_reason(text: str) -> str | None:
        for pattern, reason in FATAL_LOG_PATTERNS:
            found = pattern.search(text)
            if found:
                return reason.format(*found.groups())
        return None

    def __enter__(self) -> Server:
        try:
            self.start_and_wait()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _expired(kind: type[ServerError], message: str, deadline: Deadline) -> ServerError:
    """The error of a bounded wait that ended badly. Where its deadline expired (not where the log or
    the server's exit said why), it carries how busy the machine was: on a saturated one it runs again
    alone."""
    error = kind(message)
    if issubclass(kind, DEADLINE_ERRORS):
        error.saturated = deadline.saturated()
        error.evidence = deadline.evidence()
    return error


def _message(exc: Exception) -> str:
    """The server's own message from a tritonclient exception."""
    message = getattr(exc, "message", None)
    text = message() if callable(message) else str(exc)
    return str(text)
