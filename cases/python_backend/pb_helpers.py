"""Helpers of the python backend cases: what the server really does, seen from outside.

- the server's python backend stubs, read from ``/proc`` (children of ``triton.pid`` named
  ``triton_python_backend_stub``; the local runner only, hence ``LOCAL``);
- the server's shared-memory regions (``/dev/shm/<triton.shm_prefix>*``);
- Prometheus samples of the metrics endpoint;
- ``wait_until``: a bounded poll (the server does some things after answering, e.g. unloading);
- ``BoundedClient``: a client whose requests give up after ``CASE_TIMEOUT_S``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from harness import deadlines
from harness.client import Client

STUB = "triton_python_backend_stub"
CASE_TIMEOUT_S = 20.0  # what one request may take in these cases before it counts as hanging
LOCAL = pytest.mark.runner("local", reason="it reads the server's stub processes and shared memory from the host's "
                                           "/proc and /dev/shm")
T = TypeVar("T")


# -- processes ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    starttime: int
    argv: tuple[str, ...]
    exit_code: int = 0  # the wait status of a zombie (WTERMSIG / WEXITSTATUS apply)

    @property
    def is_stub(self) -> bool:
        return bool(self.argv) and os.path.basename(self.argv[0]) == STUB

    @property
    def model(self) -> str | None:
        """The model a stub serves: its second argument is ``<repository>/<model>/<version>/model.py``."""
        if not self.is_stub or len(self.argv) < 2:
            return None
        parts = Path(self.argv[1]).parts
        return parts[-3] if len(parts) >= 3 else None

    @property
    def instance(self) -> str | None:
        """The model instance a stub runs (e.g. ``pb_lifecycle_0_1``), from its arguments."""
        model = self.model
        for arg in self.argv[2:]:
            if model and arg.startswith(model + "_") and re.fullmatch(re.escape(model) + r"_\d+(_\d+)?", arg):
                return arg
        return None

    @property
    def zombie(self) -> bool:
        return self.state == "Z"


def read_proc(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            stat = fh.read()
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = tuple(a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a)
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return Proc(pid=pid, ppid=int(fields[1]), state=fields[0], starttime=int(fields[19]), argv=argv,
                exit_code=int(fields[-1]) if len(fields) >= 50 else 0)


def processes() -> list[Proc]:
    found = []
    for entry in glob.glob("/proc/[0-9]*"):
        proc = read_proc(int(entry[6:]))
        if proc is not None:
            found.append(proc)
    return found


def children(pid: int) -> list[Proc]:
    return [p for p in processes() if p.ppid == pid]


def stubs(server: Any, model: str | None = None, *, zombies: bool = False) -> list[Proc]:
    """The server's live stub processes (of ``model`` if given); zombies only when asked.

    A zombie has lost its command line, so it is a stub if it still carries the stub's name.
    """
    found = []
    for proc in children(server.pid):
        if proc.zombie:
            if zombies and _comm(proc.pid).startswith(STUB[:15]):
                found.append(proc)
            continue
        if proc.is_stub and (model is None or proc.model == model):
            found.append(proc)
    return found


def zombie_children(server: Any) -> list[Proc]:
    return [p for p in children(server.pid) if p.zombie]


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def is_running(proc: Proc) -> bool:
    """Whether this very process (same pid and start time) still runs (a zombie does not)."""
    now = read_proc(proc.pid)
    return now is not None and now.starttime == proc.starttime and not now.zombie


# -- shared memory -----------------------------------------------------------------------------------
def shm_regions(server: Any) -> dict[str, int]:
    """The server's python backend regions in /dev/shm (its own prefix), with their sizes."""
    regions = {}
    for path in glob.glob(f"/dev/shm/{server.shm_prefix}*"):
        with contextlib.suppress(OSError):
            regions[os.path.basename(path)] = os.stat(path).st_size
    return regions


def stub_region(proc: Proc, server: Any) -> str | None:
    """The shared-memory region a stub was started with (its argument with the server's prefix)."""
    for arg in proc.argv[1:]:
        if arg.startswith(server.shm_prefix):
            return arg
    return None


# -- polling, metrics --------------------------------------------------------------------------------
def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05,
               unless: Callable[[], list[str]] | None = None) -> T:
    """Poll ``check`` until it returns something truthy, at most ``timeout`` seconds; returns it.

    ``unless`` says why waiting on is pointless (e.g. :func:`stub_trouble`: the stub that was to get
    there crashed); the wait then fails at once with that evidence instead of at its timeout.
    """
    deadline = deadlines.for_wait(timeout)  # longer while the server moves: a busy machine is no hang
    while True:
        value = check()
        if value:
            return value
        seen = unless() if unless is not None else []
        if seen:
            raise AssertionError(f"{what}: never, as {'; '.join(seen)}")
        if deadline.poll() is None:
            raise AssertionError(f"{what}: not within {timeout:g} s ({deadline.evidence()})")
        time.sleep(interval)


STUB_CRASH_LINE = re.compile(r"^terminate called after throwing .*$|^Segmentation fault.*$|"
                             r"^.*Stub process '[^']*' is not healthy.*$", re.MULTILINE)


def stub_trouble(server: Any) -> Callable[[], list[str]]:
    """From now on: python backend stubs that ended abnormally (exit code or signal, where the runner
    sees them) and stub crash lines in the server log; for :func:`wait_until`'s ``unless``."""
    since, offset = time.monotonic(), server.log_offset()

    def seen() -> list[str]:
        crashed = [f"the server log says {line.strip()!r}" for line in STUB_CRASH_LINE.findall(server.log_since(offset))]
        return server.ended_stubs(since) + crashed[:1]

    return seen


def metric_samples(server: Any, name: str, model: str) -> dict[str, float]:
    """Samples of metric ``name`` for ``model``, keyed by their full label set."""
    with urllib.request.urlopen(server.metrics_url, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith(name + "{") and f'model="{model}"' in line:
            labels, value = line.rsplit(" ", 1)
            samples[labels] = float(value)
    return samples


def metric_total(server: Any, name: str, model: str) -> float:
    """The sum over every label set (e.g. the ``reason`` of a failure, in newer releases)."""
    return sum(metric_samples(server, name, model).values())


def model_state(client: Any, model: str) -> str | None:
    """The model's state in the repository index (READY, UNAVAILABLE, LOADING, ...), over HTTP."""
    for entry in client.get_model_repository_index():
        if entry.get("name") == model:
            return entry.get("state")
    return None


def strings(*texts: str) -> np.ndarray:
    return np.array([t.encode("utf-8") for t in texts], dtype=np.object_)


class BoundedClient(Client):
    """A ``Client`` whose every request gives up after ``CASE_TIMEOUT_S`` (gRPC: ``client_timeout``;
    HTTP: the client's network timeout)."""

    def infer(self, model: str, arrays: dict[str, np.ndarray], outputs: list[str] | None = None,
              **kwargs: Any) -> dict[str, np.ndarray]:
        if self.protocol == "grpc":
            kwargs.setdefault("client_timeout", CASE_TIMEOUT_S)
        return super().infer(model, arrays, outputs, **kwargs)


def bounded_client_for(server: Any, protocol: str) -> BoundedClient:
    if protocol == "http":
        return BoundedClient("http", server.http_client(network_timeout=CASE_TIMEOUT_S,
                                                        connection_timeout=CASE_TIMEOUT_S))
    return BoundedClient("grpc", server.grpc_client(), timeout=CASE_TIMEOUT_S)
