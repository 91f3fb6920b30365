"""Which python backend stubs of a server ended, and how: evidence for a failed case.

A stub is a child of ``tritonserver``; only its parent can wait for it, but until the server reaps
it, a dead stub is a zombie whose ``/proc/<pid>/stat`` holds its exit status (field 52). A thread
polls the server's children, so a failure can say "the stub of model 'x' exited with code 17"
instead of a bare closed connection. An exit with code 0 is an ordinary unload and is not reported.
The polling is :class:`harness.servers.procwatch.StubWatch`'s: here for a local server, in the
container for a docker one (which streams each end to :class:`StubEnds`).
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from harness.compat import KW_ONLY
from harness.servers import procwatch


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


class StubEnds:
    """The stub ends seen so far, whatever watches for them (this machine's /proc, a container's)."""

    def __init__(self) -> None:
        self._ended: list[StubEnd] = []
        self._lock = threading.Lock()

    def add(self, end: dict[str, Any]) -> None:
        """One end as :class:`harness.servers.procwatch.StubWatch` reports it, seen now."""
        with self._lock:
            self._ended.append(StubEnd(pid=int(end["pid"]), model=str(end["model"]), instance=str(end["instance"]),
                                       status=end.get("status"), at=time.monotonic()))

    def ended_since(self, since: float, model: str | None = None) -> list[str]:
        with self._lock:
            return [e.sentence() for e in self._ended if e.at >= since and e.abnormal
                    and model in (None, e.model)]


class StubMonitor(StubEnds):
    """Polls the children of ``server_pid`` on this machine; :meth:`ended_since` lists the stubs that
    ended badly."""

    def __init__(self, server_pid: int) -> None:
        super().__init__()
        self.server_pid = server_pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stub-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(1)

    def _run(self) -> None:
        watch = procwatch.StubWatch(self.server_pid)
        while not self._stop.wait(procwatch.POLL_S):
            for end in watch.poll():
                self.add(end)
