"""Which python backend stubs of a local server ended, and how: evidence for a failed case.

A stub is a child of ``tritonserver``; only its parent can wait for it, but until the server reaps
it, a dead stub is a zombie whose ``/proc/<pid>/stat`` holds its exit status (field 52). A thread
polls the server's children, so a failure can say "the stub of model 'x' exited with code 17"
instead of a bare closed connection. An exit with code 0 is an ordinary unload and is not reported.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness.compat import KW_ONLY
from harness.processes import pids, proc_stat

STUB_COMM = "triton_python_b"  # the kernel keeps 15 characters of triton_python_backend_stub
POLL_S = 0.05
DISCOVER_EVERY = 10  # polls between scans of /proc for new stubs


@dataclass(frozen=True, **KW_ONLY)
class StubEnd:
    pid: int
    model: str
    instance: str
    status: int | None  # the wait status from /proc, None when the server reaped it first
    at: float

    def sentence(self) -> str:
        if self.status is None:
            how = "ended (reaped by the server before its status could be read)"
        elif self.status & 0x7F:
            sig = self.status & 0x7F
            try:
                how = f"was killed by {signal.Signals(sig).name}"
            except ValueError:
                how = f"was killed by signal {sig}"
        else:
            how = f"exited with code {self.status >> 8}"
        return f"the python backend stub of model '{self.model}' (pid {self.pid}) {how}"

    @property
    def abnormal(self) -> bool:
        """Seen to exit non-zero or by a signal (an exit with code 0 is an unload; an exit whose status
        the server reaped first is no evidence either way)."""
        return self.status is not None and self.status != 0


def _identity(pid: int) -> tuple[str, str]:
    """(model, instance) of a stub, from its command line: ``<repo>/<model>/<version>/model.py ... <instance>``."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = [a.decode("utf-8", "replace") for a in fh.read().split(b"\0")]
    except OSError:
        return "?", f"pid {pid}"
    model = Path(argv[1]).parent.parent.name if len(argv) > 1 else "?"
    return model, (argv[8] if len(argv) > 8 else f"pid {pid}")


class StubMonitor:
    """Polls the children of ``server_pid``; :meth:`ended_since` lists the stubs that ended badly."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self._known: dict[int, tuple[str, str]] = {}
        self._ended: list[StubEnd] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stub-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(1)

    def ended_since(self, since: float, model: str | None = None) -> list[str]:
        with self._lock:
            return [e.sentence() for e in self._ended if e.at >= since and e.abnormal
                    and model in (None, e.model)]

    def _run(self) -> None:
        polls = 0
        while not self._stop.wait(POLL_S):
            if polls % DISCOVER_EVERY == 0:
                self._discover()
            polls += 1
            for pid, (model, instance) in list(self._known.items()):
                fields = proc_stat(pid)
                if fields is not None and fields[1] != "Z" and fields[2] == str(self.server_pid):
                    continue
                status = int(fields[50]) if fields is not None and len(fields) > 50 else None
                with self._lock:
                    self._ended.append(StubEnd(pid=pid, model=model, instance=instance, status=status,
                                               at=time.monotonic()))
                del self._known[pid]

    def _discover(self) -> None:
        for pid in pids():
            if pid not in self._known and _is_live_stub(pid, self.server_pid):
                self._known[pid] = _identity(pid)


def _is_live_stub(pid: int, server_pid: int) -> bool:
    """A stub of this server that has not ended (a zombie has)."""
    fields = proc_stat(pid)
    return bool(fields) and fields[0] == STUB_COMM and fields[2] == str(server_pid) and fields[1] != "Z"


def running(server_pid: int, model: str) -> list[int]:
    """The pids of ``model``'s stubs that still run: an unload is over when none is left."""
    return [pid for pid in pids() if _is_live_stub(pid, server_pid) and _identity(pid)[0] == model]
