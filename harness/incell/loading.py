"""The one way a case loads models: :class:`ModelLoader`, the ``loader`` fixture and the ``models`` marker.

Every load goes through :meth:`harness.servers.Server.load` (its deadline judged by progress, one of the
run's admission slots, a load that never answers kills the server); a case's loads run all at once, as
Triton loads in parallel (one by one on the serial path). What a loader loaded is unloaded when its
owner ends (the case, or the module for the ``models`` marker), so no case leaves models to the next.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from harness import deadlines
from harness.servers import LoadResult, Server

EachModel = Callable[[Callable[[str], Any], list[str]], list[Any]]  # CellPlugin.each_model
UNLOAD_WAIT_S = 30.0  # an unload is asynchronous: how long its model and stubs may take to go
POLL_S = 0.05
SERVED = frozenset({"READY", "LOADING", "UNLOADING"})  # index states of a version not yet unloaded


class ModelLoader:
    """Loads models on one server and unloads them when closed; ``on(server)`` gives one for a spare
    server (``triton_factory``'s), closed with this one."""

    def __init__(self, find_server: Callable[[], Server], each_model: EachModel) -> None:
        self._find_server = find_server  # asked on first use: a case that loads nothing starts no server
        self._server: Server | None = None
        self._each_model = each_model
        self.loaded: list[str] = []  # in load order; unloaded in reverse
        self._spares: list[ModelLoader] = []

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = self._find_server()
        return self._server

    def load(self, name: str, config: str | Mapping[str, Any] | None = None, *,
             files: dict[str, bytes] | None = None) -> LoadResult:
        """Load ``name`` (with a config of the case's own: JSON text or a dict) and return what the load
        said; for cases that test loading itself. It is unloaded at the end even when it failed."""
        text = json.dumps(config) if isinstance(config, Mapping) else config
        result = self.server.load(name, config=text, files=files)
        if name not in self.loaded:
            self.loaded.append(name)
        return result

    def require(self, *names: str, config: str | Mapping[str, Any] | None = None) -> list[LoadResult]:
        """Load ``names`` that are not loaded yet, all at once (or one model with a config of the case's
        own); a load that fails fails the case with the server's message."""
        if config is not None:
            if len(names) != 1:
                raise TypeError("require(name, config=...): a config belongs to one model")
            results = [self.load(names[0], config)]
        else:
            wanted = [n for n in dict.fromkeys(names) if n not in self.loaded]
            results = self._each_model(self.server.load, wanted)
            self.loaded.extend(r.model for r in results if r.error is None)
        failed = [r for r in results if r.error is not None]
        if failed:
            pytest.fail("; ".join(f"model {r.model!r} failed to load: {r.error}" for r in failed), pytrace=False)
        return results

    def unload(self, name: str, *, timeout: float = UNLOAD_WAIT_S) -> None:
        """Unload ``name`` and wait until it is gone: unavailable in the index, none of its stubs running
        (where the runner sees them), so a case can assert what an unload leaves behind."""
        server = self.server
        server.unload(name)
        with contextlib.closing(server.http_client()) as client:
            _wait(lambda: not _index_states(client, name) & SERVED, timeout, f"{name} to be unloaded")
        _wait(lambda: not server.live_stubs(name), timeout, f"the stubs of {name} to exit")
        if name in self.loaded:
            self.loaded.remove(name)

    def unload_all_at_once(self) -> None:
        """Unload what this loader loaded, all at once, without waiting for it to be gone: the ``models``
        marker's end of a module, where the next module loads other models anyway."""
        names, self.loaded = sorted(self.loaded), []
        server = self.server
        if server.alive:
            self._each_model(server.unload, names)

    def on(self, server: Server) -> ModelLoader:
        """A loader for another server of the case (``triton_factory``'s), closed with this one."""
        spare = ModelLoader(lambda: server, self._each_model)
        self._spares.append(spare)
        return spare

    def close(self) -> None:
        """Unload what is still loaded, newest first, on servers that still run (a case may have killed
        its spare server on purpose). Any error here is swallowed: the case's own verdict stands, and a
        server that broke is the next case's setup to start again."""
        for spare in self._spares:
            spare.close()
        self._spares = []
        names, self.loaded = list(reversed(self.loaded)), []
        if not names or self._server is None or not self._server.alive:
            return
        for name in names:
            with contextlib.suppress(Exception):
                self.unload(name)


def _index_states(client: Any, model: str) -> set[str | None]:
    """The states of the model's versions in the repository index (READY, UNAVAILABLE, UNLOADING, ...;
    none for a model never loaded): an unload is over when no version is in ``SERVED``."""
    return {entry.get("state") for entry in client.get_model_repository_index() if entry.get("name") == model}


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds, bounded by a deadline judged by the servers' progress."""
    deadline = deadlines.for_wait(timeout)
    while not check():
        if deadline.poll() is None:
            raise AssertionError(f"{what}: not within {timeout:g} s ({deadline.evidence()})")
        time.sleep(POLL_S)
