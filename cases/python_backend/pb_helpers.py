"""Helpers of the python backend cases: what the server really does, seen from outside.

- the server's python backend stubs (its children named ``triton_python_backend_stub``) and its
  shared-memory regions (``/dev/shm/<triton.shm_prefix>*``), read where it runs through
  ``triton.inside`` (this machine's /proc and /dev/shm, or its container's), so every runner runs them;
- Prometheus samples of the metrics endpoint;
- ``wait_until``: a bounded poll (the server does some things after answering, e.g. unloading);
- ``BoundedClient``: a client whose requests give up after ``CASE_TIMEOUT_S``.
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import numpy as np

from harness import deadlines
from harness.client import Client
from harness.servers import inside

CASE_TIMEOUT_S = 20.0  # what one request may take in these cases before it counts as hanging
T = TypeVar("T")


# -- processes ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Proc(inside.Proc):
    """A process where the server runs, with the model instance a stub runs."""

    @classmethod
    def of(cls, seen: inside.Proc) -> Proc:
        return cls(**{f.name: getattr(seen, f.name) for f in fields(inside.Proc)})

    @property
    def instance(self) -> str | None:
        """The model instance a stub runs (e.g. ``pb_lifecycle_0_1``), from its arguments."""
        model = self.model
        for arg in self.argv[2:]:
            if model and arg.startswith(model + "_") and re.fullmatch(re.escape(model) + r"_\d+(_\d+)?", arg):
                return arg
        return None


def children(server: Any) -> list[Proc]:
    """The server's child processes, where it runs (this machine, or its container)."""
    return [Proc.of(p) for p in server.inside.children()]


def stubs(server: Any, model: str | None = None, *, zombies: bool = False) -> list[Proc]:
    """The server's live stub processes (of ``model`` if given); zombies only when asked.

    A zombie has lost its command line, so it is a stub if it still carries the stub's name.
    """
    found = []
    for proc in children(server):
        if proc.zombie:
            if zombies and proc.is_stub:
                found.append(proc)
            continue
        if proc.is_stub and (model is None or proc.model == model):
            found.append(proc)
    return found


def zombie_children(server: Any) -> list[Proc]:
    return [p for p in children(server) if p.zombie]


def is_running(server: Any, proc: Proc) -> bool:
    """Whether this very process (same pid and start time) still runs where ``server`` runs (a zombie does not)."""
    return any(p.pid == proc.pid and p.starttime == proc.starttime and not p.zombie
               for p in server.inside.processes())


def kill(server: Any, proc: Proc, signum: int) -> None:
    server.inside.signal(proc.pid, signum)


# -- shared memory -----------------------------------------------------------------------------------
def shm_regions(server: Any) -> dict[str, int]:
    """The server's python backend regions in its /dev/shm (its own prefix), with their sizes."""
    return server.inside.shm_files(server.shm_prefix)


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
