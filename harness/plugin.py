"""The pytest plugin that runs a case library against one cell's real Triton server.

Loaded with ``pytest -p harness.plugin --cell <id> <case roots>`` (the cell runner does this). It

- marks cases that do not apply to the cell as skipped with a ``not-applicable:`` reason (markers
  ``backend``, ``instance_kind``, ``min_triton``, ``max_triton``, ``runner``);
- renders every model of the case roots into one repository and starts ONE server for the cell, on
  first use, in explicit model-control mode (``models`` marker: loaded before the case, unloaded after
  its module);
- gives fixtures: ``triton`` (the server), ``cell``, ``release``, ``http_client``, ``grpc_client`` and
  ``client`` (each case that takes it runs once per protocol), ``triton_log`` (the log since the case
  began);
- records the cell's axes and the live server version as JUnit suite properties, each case's id as a
  testcase property, and the server log written during a failed case as its captured log.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness import known_issues, repository
from harness import matrix as matrix_mod
from harness.client import PROTOCOLS, Client
from harness.errors import HarnessError
from harness.matrix import BACKENDS, INSTANCE_KINDS, RELEASE_RE, RUNNERS, Cell, Matrix, Release
from harness.servers import NotApplicable, Server, ServerError

NOT_APPLICABLE = "not-applicable: "
MARKERS = {
    "backend": "backend(*names): the case applies only to cells of these backends",
    "instance_kind": "instance_kind(*kinds): the case applies only to cpu or gpu cells",
    "min_triton": "min_triton(release): the case applies from this Triton release on (e.g. '24.03')",
    "max_triton": "max_triton(release): the case applies up to this Triton release",
    "runner": "runner(*names): the case applies only to cells of these runners",
    "models": "models(*names): load these models before the case (unloaded after its module)",
}


@dataclass
class CellState:
    """Everything the plugin knows about the cell it runs."""

    matrix: Matrix
    cell: Cell
    reports: Path
    case_roots: list[Path]
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="triton-matrix-")))
    server: Server | None = None
    module_models: dict[str, set[str]] = field(default_factory=dict)
    known_issues: tuple[known_issues.KnownIssue, ...] = ()
    custom_backends: dict[str, Path] = field(default_factory=dict)
    extra_servers: int = 0
    interrupted: str | None = None
    session: pytest.Session | None = None

    @property
    def release(self) -> Release:
        return self.matrix.release(self.cell.triton)

    @property
    def log_path(self) -> Path:
        return self.reports / "logs" / f"{self.cell.id}.log"


STATE = pytest.StashKey[CellState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("triton-matrix")
    group.addoption("--cell", help="the cell id to run (see 'python -m harness cells')")
    group.addoption("--matrix", help="matrix file (default: $TRITON_MATRIX or the repository's matrix.toml)")
    group.addoption("--reports", default="reports", help="reports folder (logs/ and junit/ go below it)")
    group.addoption("--case-root", action="append", default=[], help="a case library root (repeatable)")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", text)
    cell_id = config.getoption("--cell")
    if not cell_id:
        return
    try:
        matrix = matrix_mod.load(config.getoption("--matrix"))
        cell = matrix.cell(cell_id)
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    roots = [Path(r).resolve() for r in config.getoption("--case-root")]
    if not roots:
        roots = [Path(a).resolve() for a in config.args if Path(a).is_dir()]
    config.stash[STATE] = CellState(
        matrix=matrix, cell=cell, reports=Path(config.getoption("--reports")).resolve(), case_roots=roots
    )
    try:
        config.stash[STATE].known_issues = known_issues.load_all(roots, matrix.known_failures)
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    # SIGTERM (CI cancelling a job, nox stopping a parallel worker) and Ctrl-C kill the server group
    # at once (whoever sent them will not wait long), then end the session: fixtures tear down and
    # the JUnit file of what ran is written.
    def interrupt(signum: int, frame: object) -> None:
        state = config.stash[STATE]
        if state.interrupted:  # the same stop may arrive twice (from nox and from the cell runner)
            return
        state.interrupted = f"interrupted by {signal.Signals(signum).name}"
        if state.server is not None:
            state.server.kill(f"the run was {state.interrupted}")
        if state.session is not None:  # stops after this case even if a case swallows the interrupt
            state.session.shouldstop = state.interrupted
        raise KeyboardInterrupt(state.interrupted)

    signal.signal(signal.SIGTERM, interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupt)


def pytest_sessionstart(session: pytest.Session) -> None:
    """The cell's axes go into its JUnit file here, not in a fixture: a cell whose every case is
    not applicable runs no fixture, and its JUnit file must still say which cell it is."""
    state = session.config.stash.get(STATE, None)
    if state is None:
        return
    state.session = session
    for key, value in state.cell.as_dict().items():
        if key != "gpu":
            _suite_property(session.config, "cell" if key == "id" else key, "" if value is None else value)
    _suite_property(session.config, "expected_server_version", state.release.server_version)
    _suite_property(session.config, "packages", _packages_line())
    for name, value in known_issues.suite_properties(state.known_issues, state.cell):
        _suite_property(session.config, name, value)


def _suite_property(config: pytest.Config, name: str, value: object) -> None:
    """What record_testsuite_property does, outside a fixture (pytest's own LogXML object)."""
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is not None:
        xml.add_global_property(name, value)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """An interrupted cell says so in its JUnit file, so the report knows it is partial."""
    state = session.config.stash.get(STATE, None)
    if state is not None:
        session.exitstatus = known_issues.exit_status(session, exitstatus)
    if state is None or exitstatus != pytest.ExitCode.INTERRUPTED:
        return
    _suite_property(session.config, "interrupted", state.interrupted or "interrupted by Ctrl-C")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        if state.server is not None:
            state.server.stop()
        shutil.rmtree(state.workdir, ignore_errors=True)


# -- applicability ---------------------------------------------------------------------------------
def _release_key(value: str, where: str) -> tuple[int, int]:
    if not RELEASE_RE.match(str(value)):
        raise pytest.UsageError(f"{where}: {value!r} is not a Triton release; write it as YY.MM, e.g. '24.03'")
    year, month = str(value).split(".")
    return int(year), int(month)


def _check_values(item: pytest.Item, name: str, values: tuple[Any, ...], allowed: tuple[str, ...]) -> None:
    for value in values:
        if value not in allowed:
            raise pytest.UsageError(
                f"{item.nodeid}: marker {name} has unknown value {value!r}; use one of: {', '.join(allowed)}"
            )


def not_applicable_reason(item: pytest.Item, cell: Cell) -> str | None:
    """Why ``item`` does not apply to ``cell`` (None when it does); unknown marker values are errors."""
    checks = (("backend", BACKENDS, cell.backend), ("instance_kind", INSTANCE_KINDS, cell.instance_kind),
              ("runner", RUNNERS, cell.runner))
    for name, allowed, actual in checks:
        for mark in item.iter_markers(name):
            _check_values(item, name, mark.args, allowed)
            if actual not in mark.args:
                return f"case needs {name} {' or '.join(mark.args)}; cell has {actual}"
    current = _release_key(cell.triton, "cell")
    for mark in item.iter_markers("min_triton"):
        if current < _release_key(mark.args[0], item.nodeid):
            return f"case needs Triton {mark.args[0]} or newer; cell runs {cell.triton}"
    for mark in item.iter_markers("max_triton"):
        if current > _release_key(mark.args[0], item.nodeid):
            return f"case applies up to Triton {mark.args[0]}; cell runs {cell.triton}"
    return None


def case_id(item: pytest.Item, roots: list[Path]) -> str:
    """The node id relative to the case root that holds it (the report's row key)."""
    path = Path(item.path).resolve()
    rest = item.nodeid.split("::", 1)[1] if "::" in item.nodeid else item.name
    for root in roots:
        if path.is_relative_to(root):
            return f"{path.relative_to(root).as_posix()}::{rest}"
    return item.nodeid


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash.get(STATE, None)
    if state is None:
        return
    for item in items:
        item.user_properties.append(("case", case_id(item, state.case_roots)))
        known_issues.prepare(item, state.known_issues, state.cell, case_id(item, state.case_roots))
        if item.get_closest_marker("models") and "triton" not in item.fixturenames:
            item.fixturenames.append("triton")  # type: ignore[attr-defined]
        reason = not_applicable_reason(item, state.cell)
        if reason:
            item.add_marker(pytest.mark.skip(reason=NOT_APPLICABLE + reason))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "client" in metafunc.fixturenames:
        metafunc.parametrize("client", PROTOCOLS, indirect=True)


# -- the server ------------------------------------------------------------------------------------
def _state(config: pytest.Config) -> CellState:
    state = config.stash.get(STATE, None)
    if state is None:
        raise pytest.UsageError("the triton fixtures need --cell <id>")
    return state


def make_server(state: CellState, *, extra_args: tuple[str, ...] = (), log_path: Path | None = None,
                workdir: Path | None = None) -> Server:
    """Create (not start) a server of the cell's runner over the cell's rendered repository."""
    repo = state.workdir / "repository"
    if not repo.exists():
        repository.render(state.case_roots, state.cell, repo)
    backends = state.workdir / "custom-backends"
    if not backends.exists():
        built = repository.build_backends(state.case_roots, backends)
        state.custom_backends = built
    settings = state.matrix.settings
    common = {
        "log_path": log_path or state.log_path,
        "start_timeout": settings["start_timeout"],
        "load_timeout": settings["load_timeout"],
        "stop_timeout": settings["stop_timeout"],
    }
    if state.cell.runner == "local":
        from harness.servers.local import LocalServer

        return LocalServer(
            venv=Path(sys.prefix),
            python=state.cell.python,
            python_libdir=Path(sys.base_prefix) / "lib",
            repository=repo,
            workdir=workdir or state.workdir,
            extra_args=extra_args,
            extra_backends=state.custom_backends,
            **common,
        )
    from harness.servers.docker import DockerServer

    return DockerServer(cell=state.cell, release=state.release, repository=repo, extra_args=extra_args,
                        extra_backends=state.custom_backends, image_kind=state.matrix.docker["image"],
                        shm_size=state.matrix.docker["shm_size"], **common)


def _packages_line() -> str:
    names = ("numpy", "tritonclient", "nvidia-pytriton")
    found = []
    for name in names:
        try:
            found.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return " ".join(found)


@pytest.fixture(scope="session")
def cell(request: pytest.FixtureRequest) -> Cell:
    return _state(request.config).cell


@pytest.fixture(scope="session")
def release(request: pytest.FixtureRequest) -> Release:
    return _state(request.config).release


@pytest.fixture(scope="session")
def triton(request: pytest.FixtureRequest, record_testsuite_property: Any) -> Iterator[Server]:
    """The cell's one server, started on first use and stopped at the end of the session."""
    state = _state(request.config)
    try:
        server = make_server(state)
    except HarnessError as exc:
        raise ServerError(str(exc)) from None
    state.server = server
    started = time.monotonic()
    try:
        server.start_and_wait()
        record_testsuite_property("server_start_s", f"{time.monotonic() - started:.3f}")
        record_testsuite_property("server_version", server.version)
        available = server.backends()
        record_testsuite_property("server_backends", " ".join(available))
        if state.cell.backend not in ("custom", *available):
            raise NotApplicable(f"the server has no {state.cell.backend} backend (its backend directory holds: "
                                f"{', '.join(available) or 'nothing'})")
        if server.version != state.release.server_version:
            reason = (
                f"server reports version {server.version} but matrix.toml says "
                f"{state.release.server_version} for {state.cell.triton}"
            )
            server.kill(reason)
            raise ServerError(reason, fix="correct the release table in matrix.toml")
    except NotApplicable as exc:
        server.stop()
        state.server = None
        pytest.skip(NOT_APPLICABLE + str(exc))
    except BaseException:
        server.stop()
        state.server = None
        raise
    yield server
    stopping = time.monotonic()
    server.stop()
    record_testsuite_property("server_stop_s", f"{time.monotonic() - stopping:.3f}")
    state.server = None


@pytest.fixture
def triton_factory(request: pytest.FixtureRequest) -> Any:
    """Start another server of the cell for one case, e.g. with other command-line options.

    ``with triton_factory("--disable-auto-complete-config") as server: ...``; the server has its own
    log (``reports/logs/<cell>.<n>.log``) and is stopped when the block or the case ends.
    """
    state = _state(request.config)
    started: list[Server] = []

    @contextlib.contextmanager
    def factory(*extra_args: str) -> Iterator[Server]:
        state.extra_servers += 1
        n = state.extra_servers
        workdir = state.workdir / f"extra-{n}"
        workdir.mkdir(parents=True, exist_ok=True)
        server = make_server(state, extra_args=tuple(extra_args), workdir=workdir,
                             log_path=state.reports / "logs" / f"{state.cell.id}.{n}.log")
        started.append(server)
        try:
            server.start_and_wait()
            yield server
        finally:
            server.stop()

    yield factory
    for server in started:
        server.stop()


def _case_timeout(request: pytest.FixtureRequest) -> float:
    return _state(request.config).matrix.settings["case_timeout"]


@pytest.fixture(scope="session")
def http_client(request: pytest.FixtureRequest, triton: Server) -> Iterator[Client]:
    """HTTP client whose requests give up after the case timeout (pytest-timeout's alarm cannot
    interrupt the gevent-based HTTP client, so the client bounds itself)."""
    timeout = _case_timeout(request)
    client = Client("http", triton.http_client(network_timeout=timeout, connection_timeout=timeout),
                    timeout=timeout)
    yield client
    client.close()


@pytest.fixture(scope="session")
def grpc_client(request: pytest.FixtureRequest, triton: Server) -> Iterator[Client]:
    client = Client("grpc", triton.grpc_client(), timeout=_case_timeout(request))
    yield client
    client.close()


@pytest.fixture
def client(request: pytest.FixtureRequest) -> Client:
    """The case runs once per protocol: ``client`` is the HTTP one, then the gRPC one."""
    return request.getfixturevalue(f"{request.param}_client")


@pytest.fixture
def triton_log(request: pytest.FixtureRequest, triton: Server) -> Any:
    """A callable that returns the server log written since the case started."""
    offset = triton.log_offset()
    return lambda: triton.log_since(offset)


@pytest.fixture(scope="module", autouse=True)
def _unload_module_models(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    state = request.config.stash.get(STATE, None)
    if state is None or state.server is None:
        return
    for model in sorted(state.module_models.pop(request.node.nodeid, set())):
        try:
            state.server.unload(model)
        except Exception:  # noqa: BLE001 - a dead server already failed its cases
            break


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Load the models a case names before it runs: a model that fails to load fails the case."""
    state = item.config.stash.get(STATE, None)
    names = [n for mark in item.iter_markers("models") for n in mark.args]
    if state is not None and state.server is not None and names:
        server = state.server
        loaded = state.module_models.setdefault(_module_nodeid(item), set())
        for name in names:
            if name in loaded:
                continue
            result = server.load(name)
            if result.error is not None:
                pytest.fail(f"model {name!r} failed to load: {result.error}", pytrace=False)
            loaded.add(name)
    return (yield)


def _module_nodeid(item: pytest.Item) -> str:
    module = item.getparent(pytest.Module)
    return module.nodeid if module else item.nodeid


# -- failure logs ----------------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Remember where the log stands; a server that died earlier errors the case at once."""
    state = item.config.stash.get(STATE, None)
    if state is not None:
        item.stash[_LOG_OFFSET] = state.server.log_offset() if state.server else 0
        if state.server is not None and "triton" in getattr(item, "fixturenames", ()):
            state.server.check_alive()


_LOG_OFFSET = pytest.StashKey[int]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    state = item.config.stash.get(STATE, None)
    if state is not None and report.failed and state.server is not None:
        server = state.server
        if report.when == "call" and not server.broken:
            try:
                server.check_alive()  # a server that died during the case: say so, and how
            except ServerError as exc:
                report.sections.append(("Captured log triton server ended", str(exc)))
        lines = server.log_since(item.stash.get(_LOG_OFFSET, 0)).splitlines()[-200:]
        if lines:
            report.sections.append(("Captured log triton server (during the case)", "\n".join(lines)))
        else:
            report.sections.append(("Captured log triton server (nothing during the case; its last lines)",
                                    server.log_tail(30)))
    if state is not None:
        known_issues.classify(item, call, report, state.known_issues, state.cell, case_id(item, state.case_roots))
    return report
