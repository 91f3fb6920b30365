"""The fixtures a case uses: the cell, its release, the worker's server and its clients, a spare server,
the model loader.

They ask the cell's plugin (``harness.incell.plugin``, which loads this module), so they hold no state of
their own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.client import Client
from harness.errors import NotApplicable
from harness.layout import NOT_APPLICABLE_PREFIX, Prop, extra_log_path
from harness.incell.loading import ModelLoader
from harness.matrix import Cell, Release
from harness.incell.plugin import PLUGIN_NAME, plugin_of
from harness.servers import Server, ServerError


@pytest.fixture(scope="session")
def cell(request: pytest.FixtureRequest) -> Cell:
    return plugin_of(request.config).cell


@pytest.fixture(scope="session")
def release(request: pytest.FixtureRequest) -> Release:
    """The cell's release: ``release.at_least("24.03")``, ``release.at_most(...)``, ``release.pick({"default":
    a, "24.07": b})``, the one way cases compare releases (the markers and known issues use the same key)."""
    return plugin_of(request.config).release


@pytest.fixture(scope="session")
def triton(request: pytest.FixtureRequest) -> Iterator[Server]:
    """The worker's one server (each of a cell's workers has its own), started on first use (again
    after a crash) and killed at the end."""
    plugin = plugin_of(request.config)
    started = time.monotonic()
    try:
        server = plugin.cell_server.start()
    except NotApplicable as exc:
        pytest.skip(NOT_APPLICABLE_PREFIX + str(exc))
    plugin.suite_property(Prop.SERVER_START_S, f"{time.monotonic() - started:.3f}")
    plugin.suite_property(Prop.SERVER_VERSION, server.version)
    plugin.suite_property(Prop.SERVER_BACKENDS, " ".join(server.backends()))
    yield server
    stopping = time.monotonic()
    plugin.cell_server.close()
    plugin.suite_property(Prop.SERVER_STOP_S, f"{time.monotonic() - stopping:.3f}")


@pytest.fixture
def triton_factory(request: pytest.FixtureRequest) -> Any:
    """Start another server of the cell for one case, e.g. with other command-line options.

    ``with triton_factory("--disable-auto-complete-config") as server: ...``; the server has its own
    log (``reports/logs/<cell>.w<worker>.<n>.log``) and is stopped when the block or the case ends.
    """
    plugin = plugin_of(request.config)

    @contextlib.contextmanager
    def factory(*extra_args: str) -> Iterator[Server]:
        plugin.extra_servers += 1
        n = plugin.extra_servers
        workdir = plugin.workdir / f"extra-{n}"
        workdir.mkdir(parents=True, exist_ok=True)
        log = extra_log_path(plugin.reports, plugin.cell.id, n, plugin.worker)
        server = plugin.servers.create(log_path=log, workdir=workdir, extra_args=tuple(extra_args))
        plugin.case_servers.append(server)
        try:
            server.start_and_wait()
            yield server
        finally:
            server.stop()

    return factory


@pytest.fixture
def http_client(request: pytest.FixtureRequest, triton: Server) -> Client:
    """HTTP client whose requests give up after the case timeout (the gevent client bounds itself)."""
    return plugin_of(request.config).cell_server.client("http")


@pytest.fixture
def grpc_client(request: pytest.FixtureRequest, triton: Server) -> Client:
    return plugin_of(request.config).cell_server.client("grpc")


@pytest.fixture
def client(request: pytest.FixtureRequest) -> Client:
    """The case runs once per protocol: ``client`` is the HTTP one, then the gRPC one."""
    return request.getfixturevalue(f"{request.param}_client")


@pytest.fixture
def triton_log(request: pytest.FixtureRequest, triton: Server) -> Any:
    """A callable that returns the server log written since the case started, up to now on every runner
    (a container's log is copied by the engine, late: each call waits for it, ``Server.sync_log``)."""
    offset = triton.log_offset()

    def written() -> str:
        triton.sync_log()
        return triton.log_since(offset)

    return written


@pytest.fixture
def loader(request: pytest.FixtureRequest) -> Iterator[ModelLoader]:
    """The one way a case loads models (``harness.incell.loading``): ``loader.require("a", "b")`` (a failed load
    fails the case), ``loader.load(name, config)`` (the ``LoadResult``, for cases that test loading),
    ``loader.unload(name)`` (waits until it is gone), ``loader.on(spare)`` for a ``triton_factory``
    server. What it loaded is unloaded when the case ends."""
    models = ModelLoader(lambda: request.getfixturevalue("triton"), plugin_of(request.config).each_model)
    yield models
    models.close()


@pytest.fixture(scope="module", autouse=True)
def _unload_module_models(request: pytest.FixtureRequest) -> Iterator[None]:
    """The ``models`` marker's models are unloaded after their module, all at once, as they were loaded."""
    yield
    plugin = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    module_loader = plugin.module_loaders.pop(request.node.nodeid, None) if plugin is not None else None
    if module_loader is None:
        return
    try:
        module_loader.unload_all_at_once()
    except ServerError:  # a dead server already failed its cases
        pass


@pytest.fixture(scope="session")
def each_model(request: pytest.FixtureRequest) -> Any:
    """``each_model(triton.load, names)``: load (or unload) many models at once, as the plugin loads a
    case's models (one by one on the serial path); returns the results in the order of ``names``."""
    return plugin_of(request.config).each_model
