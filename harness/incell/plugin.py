"""The pytest plugin that runs a case library against a real Triton server of one cell.

Loaded with ``pytest -p harness.incell.plugin --spec <spec.json> --worker <k> <case files>`` (the cell
runner starts a few such workers, see ``harness.run.workers``). The cell spec (``harness.spec``) is all
the worker reads: the cell, its release and settings, the case roots and the known issues that apply;
the worker opens no matrix.toml. With ``--spec``, one :class:`CellPlugin` is registered: it
holds the worker's state and its methods are the hooks (as pytest-xdist's ``DSession``); with
``--claims`` the worker takes modules from the cell's shared queue (``harness.incell.sharing``). It marks cases
that do not apply as not applicable, starts ONE server for the worker on first use
(``harness.servers.factory``), loads the models a case names, keeps
each case's deadline with a watchdog thread (``harness.incell.supervise``), starts the server again after it
died, and writes the cell's axes, the live server version and each case's id and verdict into JUnit.
The fixtures (``harness.incell.fixtures``) ask the plugin.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.metadata
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from harness import deadlines, options
from harness import spec as cell_spec
from harness.incell import applicability
from harness.incell import classify
from harness.incell import collect_errors
from harness.matrix import known_issues
from harness.incell import supervise
from harness.client import PROTOCOLS
from harness.errors import HarnessError
from harness.layout import NOT_APPLICABLE_PREFIX, Prop, Verdict, leftover_path, progress_path, worker_log_path
from harness.incell.loading import ModelLoader
from harness.matrix import Release
from harness.progress import ProgressRecorder
from harness.servers import Server, ServerError
from harness.servers.cellserver import CellServer
from harness.servers.factory import CellServers
from harness.incell.sharing import ModuleQueue

pytest_plugins = ("harness.incell.fixtures",)  # the fixtures cases use; they ask the plugin below

PLUGIN_NAME = "triton-matrix-cell"
T = TypeVar("T")
VERDICTS = {supervise.CaseTimeout: Verdict.TIMEOUT, supervise.ServerDied: Verdict.SERVER_DIED,
            supervise.Interrupted: Verdict.INTERRUPTED}


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_pytest_options(parser)  # --spec, --worker, --claims: declared in harness.options


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> Iterator[None]:
    """A case library's conftest.py that raises at import becomes an error result of its own when
    pytest meets it again while collecting its folder (``harness.incell.collect_errors``), and the other
    areas run; at startup it would end the worker with a usage error, before it writes its JUnit file."""
    try:
        return (yield)
    except collect_errors.WRAPPERS:
        if not getattr(early_config.known_args_namespace, "spec", None):
            raise
        return None


def pytest_configure(config: pytest.Config) -> None:
    for text in applicability.MARKERS.values():
        config.addinivalue_line("markers", text)
    path = config.getoption("spec")
    if not path:
        return
    try:
        spec = cell_spec.read(Path(path))
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    worker = config.getoption("worker")
    plugin = CellPlugin(config, spec, worker=worker)
    config.pluginmanager.register(plugin, PLUGIN_NAME)
    config.pluginmanager.register(collect_errors.CollectErrors(config, plugin.case_roots),
                                  "triton-matrix-collect-errors")
    if config.getoption("claims"):
        plugin.queue = ModuleQueue(Path(config.getoption("claims")), worker)
        config.pluginmanager.register(plugin.queue, "triton-matrix-queue")
    progress = ProgressRecorder(progress_path(spec.reports, spec.cell.id, worker), cell=spec.cell.id)
    config.pluginmanager.register(progress, "triton-matrix-progress")
    plugin.install_signal_handlers()
    deadlines.set_ambient(plugin.servers_probe())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "client" in metafunc.fixturenames:
        metafunc.parametrize("client", PROTOCOLS, indirect=True)


def plugin_of(config: pytest.Config) -> CellPlugin:
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is None:
        raise pytest.UsageError(
            "the triton fixtures need --spec <the cell spec> (python -m harness cell <id> writes it)")
    return plugin


class CellPlugin:
    """Everything the plugin knows about the cell it runs; its methods are pytest hooks."""

    def __init__(self, config: pytest.Config, spec: cell_spec.CellSpec, *, worker: int = 0) -> None:
        self.config = config
        self.spec = spec
        self.worker = worker
        self.serial_loads = spec.serial_loads
        self.known_issues = spec.known_issues
        self.cell = spec.cell
        self.release: Release = spec.release
        self.settings = spec.settings
        self.reports = spec.reports
        self.case_roots = list(spec.case_roots)
        self.workdir = Path(tempfile.mkdtemp(prefix="triton-matrix-"))
        self.cell_server = CellServer(
            spec.cell, spec.release.server_version,
            lambda: CellServers.prepare(spec.cell, spec.release, spec.settings, spec.docker, self.case_roots,
                                        self.workdir),
            log_path=worker_log_path(spec.reports, spec.cell.id, worker), workdir=self.workdir,
            request_timeout=spec.settings.budget().case_cap)  # clients give up after the watchdog could
        self.module_loaders: dict[str, ModelLoader] = {}  # module nodeid -> what its ``models`` markers loaded
        self.case_servers: list[Server] = []  # spare servers of the case in flight (the watchdog ends them too)
        self.extra_servers = 0
        self.queue: ModuleQueue | None = None  # the modules this worker shares with the cell's others
        self.in_flight: pytest.Item | None = None
        self.expired: dict[str, supervise.Expiry] = {}  # nodeid -> what the watchdog saw at the deadline
        self.interrupted: str | None = None  # why a signal stopped the worker; None: no signal did
        self.session: pytest.Session | None = None
        self.watchdog = supervise.Watchdog()
        self.main_thread = threading.get_ident()

    @property
    def server(self) -> Server | None:
        return self.cell_server.server

    @property
    def servers(self) -> CellServers:
        return self.cell_server.servers

    @property
    def servers_in_use(self) -> list[Server]:
        """The cell's server and the spare servers of the case in flight."""
        return [s for s in (self.server, *self.case_servers) if s is not None]

    # -- session -----------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """SIGTERM (CI cancelling a job, the cell runner's deadline) and Ctrl-C kill the servers at once,
        then end the session: fixtures tear down and the JUnit file of what ran is written."""
        signal.signal(signal.SIGTERM, self._interrupt)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._interrupt)

    def _interrupt(self, signum: int, frame: object) -> None:
        if self.interrupted:  # the same stop may arrive twice (from the scheduler and the cell runner)
            return
        self.interrupted = f"interrupted by {signal.Signals(signum).name}"
        if self.in_flight is not None:
            self.suite_property(Prop.INTERRUPTED_CASE, self.in_flight.stash[_CASE])
        self._end_servers(f"the run was {self.interrupted}")
        if self.session is not None:  # stops after this case even if a case swallows the interrupt
            self.session.shouldstop = self.interrupted
        raise KeyboardInterrupt(self.interrupted)

    def _end_servers(self, reason: str) -> None:
        for server in self.servers_in_use:
            server.kill(reason)

    def suite_property(self, name: str, value: object) -> None:
        """What record_testsuite_property does, outside a fixture (pytest's own LogXML object)."""
        from _pytest.junitxml import xml_key

        xml = self.config.stash.get(xml_key, None)
        if xml is not None:
            xml.add_global_property(name, "" if value is None else value)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """The cell's axes go into its JUnit file here, not in a fixture: a cell whose every case is
        not applicable runs no fixture, and its JUnit file must still say which cell it is."""
        self.session = session
        for key, value in self.cell.as_dict().items():
            if key != "gpu":
                self.suite_property(Prop.CELL if key == "id" else key, value)
        self.suite_property(Prop.EXPECTED_SERVER_VERSION, self.release.server_version)
        self.suite_property(Prop.PACKAGES, _packages_line())
        for name, value in classify.suite_properties(self.known_issues, self.cell):
            self.suite_property(name, value)

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        default = self.settings.case_timeout
        for item in items:
            given = next((value for name, value in item.user_properties if name == Prop.CASE), None)
            case = item.stash[_CASE] = given or applicability.case_id(item, self.case_roots)
            if given is None:  # models mode names its checks itself (models/<model>::<check>)
                item.user_properties.append((Prop.CASE, case))
            classify.prepare(item, self.known_issues, self.cell, case)
            if item.get_closest_marker("models") and "triton" not in item.fixturenames:
                item.fixturenames.append("triton")  # type: ignore[attr-defined]
            applicability.case_timeout(item, default)  # a bad case_timeout marker stops the cell here, naming the case
            reason = applicability.not_applicable_reason(item, self.cell)
            if reason:
                item.add_marker(pytest.mark.skip(reason=NOT_APPLICABLE_PREFIX + reason))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """The worker's plan (every case it collected, or of the modules it claimed, then also of those
        nobody took when it was stopped) and, for an interrupted cell, that it is partial: the report
        reads both. A worker that ended abnormally (INTERNALERROR) takes nothing more: it says what it
        did not finish, and the cell runner hands that on to a follow-up worker (``harness.run.requeue``)."""
        stopped = bool(self.interrupted or session.shouldstop or session.shouldfail) \
            or exitstatus == pytest.ExitCode.INTERRUPTED
        if self.queue is not None and stopped:
            self.queue.sweep()
        elif self.queue is not None and exitstatus == pytest.ExitCode.INTERNAL_ERROR:
            self.queue.leftover().write(leftover_path(self.reports, self.cell.id, self.worker))
        planned = self.queue.claimed if self.queue is not None else session.items
        self.suite_property(Prop.COLLECTED, "\n".join(item.stash[_CASE] for item in planned if _CASE in item.stash))
        self.suite_property(Prop.SERVER_RESTARTS, self.cell_server.restarts)
        session.exitstatus = classify.exit_status(session, exitstatus)
        if self.interrupted:
            self.suite_property(Prop.INTERRUPTED, self.interrupted)
        elif exitstatus == pytest.ExitCode.INTERRUPTED and session.testsfailed:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # pytest stopped itself on errors: no signal

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Ctrl-C where another SIGINT handler than ours was in place; pytest's own stop (its
        ``Session.Interrupted``, e.g. after collection errors) is no interruption."""
        if self.interrupted is None and not isinstance(excinfo.value, pytest.Session.Interrupted):
            self.interrupted = "interrupted by Ctrl-C"

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.watchdog.close()
        self.cell_server.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- cases ----------------------------------------------------------------------------------------
    # Each phase of a case (its fixtures' setup, the case, their teardown) runs under a deadline of its
    # own: a fixture that waits on a stream's end blocks as surely as a case does, and nothing else
    # would end that wait (pytest-timeout used to cover the three phases; the watchdog now does).
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Iterator[None]:
        """Remember where the log stands; a server that died earlier is started again first. The
        setup that starts the worker's server has the server's start deadline on top of the case's."""
        self.expired.pop(item.nodeid, None)  # a rerun's phases start afresh
        uses_server = "triton" in getattr(item, "fixturenames", ())
        if self.server is not None and uses_server and self.cell_server.ensure_alive():
            self.module_loaders.clear()  # a server started again has nothing loaded
        item.stash[_LOG_OFFSET] = self.server.log_offset() if self.server else 0
        self.in_flight = item
        starts = uses_server and self.server is None
        return (yield from self._under_deadline(item, "setup", self.settings.start_timeout if starts else 0.0))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        """Load the models a case names (each load has its own deadline), then run the case."""
        self._load_models(item)
        return (yield from self._under_deadline(item, "call"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
        """The last case's teardown also stops the worker's server: its stop deadline is added."""
        try:
            return (yield from self._under_deadline(
                item, "teardown", self.settings.stop_timeout if nextitem is None else 0.0))
        finally:
            self.in_flight = None
            self.case_servers = []

    def case_seconds(self, item: pytest.Item) -> float:
        """The case's deadline: its marker, a known issue's, or the matrix's ``case_timeout``."""
        return known_issues.deadline(self.known_issues, self.cell, item.stash[_CASE],
                                     applicability.case_timeout(item, self.settings.case_timeout))

    def _under_deadline(self, item: pytest.Item, when: str, extra_s: float = 0.0) -> Iterator[None]:
        """Run one phase of a case (the rest of the hook's chain) under the watchdog, and judge how it
        ended: an error the deadline caused, or a deadline the phase swallowed, is a timeout."""
        seconds = self.case_seconds(item) + extra_s
        deadline = deadlines.Deadline(seconds, self.case_probe())
        generation = self.server.generation if self.server else None
        self.watchdog.arm(deadline, lambda: self._expire(item, when, deadline),
                          fallback_s=self.settings.budget(seconds).fallback)
        try:
            outcome = yield
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self.watchdog.disarm()
            expiry = self._expiry(item, when)
            if when != "call" and expiry is None:  # a fixture's own error stands
                raise
            diagnosis = self._diagnose(exc, expiry, seconds, deadline.started, generation)
            if diagnosis is None:
                raise
            raise diagnosis from exc
        finally:
            self.watchdog.disarm()
        expiry = self._expiry(item, when)
        if expiry is not None:  # the phase swallowed the error its deadline caused
            raise self._diagnose(None, expiry, seconds, deadline.started, generation) or supervise.CaseTimeout(seconds)
        return outcome

    def _expiry(self, item: pytest.Item, when: str) -> supervise.Expiry | None:
        """What the watchdog saw when this phase of the case ran past its deadline (None: it did not)."""
        expiry = self.expired.get(item.nodeid)
        return expiry if expiry is not None and expiry.when == when else None

    def servers_probe(self) -> deadlines.Probe:
        """What shows the servers a case uses (spare ones too) moving: their and their stubs' CPU and
        run-queue time, their logs. A case's own waits watch it (``deadlines.for_wait``)."""
        return deadlines.Probe(roots=lambda: [pid for s in self.servers_in_use for pid in s.root_pids()],
                               logs=lambda: [s.log_path for s in self.servers_in_use])

    def case_probe(self) -> deadlines.Probe:
        """What shows a case moving: its servers, and this worker's main thread (the case's own work)."""
        return deadlines.combine(self.servers_probe(), deadlines.main_thread_probe())

    def starved(self, item: pytest.Item, expiry: supervise.Expiry | None, error: BaseException | None) -> str | None:
        """The evidence, when this failure is a deadline that expired on a saturated machine (its own, or
        a load's or server start's): then it runs again alone at the end of the cell. A declared issue
        never does."""
        if known_issues.declared(self.known_issues, self.cell, item.stash[_CASE]):
            return None
        if expiry is not None:
            return expiry.evidence if expiry.saturated else None
        return error.evidence if isinstance(error, ServerError) and error.saturated else None

    def _diagnose(self, exc: BaseException | None, expiry: supervise.Expiry | None, deadline: float,
                  started: float, generation: int | None) -> Exception | None:
        stubs = supervise.server_side(self.servers_in_use, started)
        return supervise.diagnose(exc, expired=expiry, deadline=deadline,
                                  interrupted=self.interrupted, server=self.server, generation=generation, stubs=stubs)

    def _load_models(self, item: pytest.Item) -> None:
        """Load the case's ``models`` that its module has not loaded yet, all at once (Triton loads them
        in parallel; a python model's stub takes about a second to start), on the module's loader."""
        names = [n for mark in item.iter_markers("models") for n in mark.args]
        server = self.server
        if server is None or not names:
            return
        module = _module_nodeid(item)
        if module not in self.module_loaders:
            self.module_loaders[module] = ModelLoader(lambda: server, self.each_model)
        self.module_loaders[module].require(*names)

    def each_model(self, action: Callable[[str], T], names: list[str]) -> list[T]:
        """``action`` (a server's load or unload) for each model, all at once (Triton loads and unloads
        in parallel), or one by one on the serial path."""
        names = list(dict.fromkeys(names))
        if not names:
            return []
        with concurrent.futures.ThreadPoolExecutor(max_workers=1 if self.serial_loads else len(names)) as pool:
            return list(pool.map(action, names))

    def _expire(self, item: pytest.Item, when: str, deadline: deadlines.Deadline) -> None:
        """At the deadline (watchdog thread): keep the evidence, then end what the case waits on."""
        expiry = supervise.Expiry(when=when,
                                  server_side=supervise.server_side(self.servers_in_use, deadline.started),
                                  stack=supervise.stack_of(self.main_thread), evidence=deadline.evidence(),
                                  saturated=deadline.saturated())
        self.expired[item.nodeid] = expiry
        self._end_servers(f"case {item.nodeid} ({when}) ran past its {deadline.seconds:g} s deadline "
                          f"({expiry.evidence})")

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
        report = yield
        if call.excinfo is not None:  # the first phase's verdict stands (a teardown after a timeout)
            verdict = next((v for kind, v in VERDICTS.items() if isinstance(call.excinfo.value, kind)), None)
            if verdict is not None and not any(name == Prop.VERDICT for name, _ in item.user_properties):
                item.user_properties.append((Prop.VERDICT, verdict))
        expiry = self._expiry(item, report.when)
        starved = self.starved(item, expiry, call.excinfo.value if call.excinfo is not None else None) \
            if report.failed else None
        if starved and (Prop.RETRY_ALONE, starved) not in item.user_properties:
            item.user_properties.append((Prop.RETRY_ALONE, starved))
        if report.failed and expiry is not None:
            report.sections.append(("Captured evidence at the case's deadline", "\n".join(
                [expiry.evidence, *expiry.server_side, "where the case was:", expiry.stack])))
        if report.failed and self.server is not None:
            lines = self.server.log_since(item.stash.get(_LOG_OFFSET, 0)).splitlines()[-200:]
            if lines:
                report.sections.append(("Captured log triton server (during the case)", "\n".join(lines)))
            else:
                report.sections.append(("Captured log triton server (nothing during the case; its last lines)",
                                        self.server.log_tail(30)))
        classify.result(item, call, report, self.known_issues, self.cell, item.stash[_CASE])
        if report.failed and not any(name == Prop.FIRST_FAILURE for name, _ in item.user_properties):
            item.user_properties.append((Prop.FIRST_FAILURE, first_failure(report.when, call)))
        report.user_properties = list(item.user_properties)  # the verdict and the issue, for the recorder
        return report


def first_failure(when: str, call: pytest.CallInfo[None], limit: int = 400) -> str:
    """One line for a failed attempt: its phase and exception. pytest-rerunfailures writes no text for
    an attempt it runs again, and the item's properties outlive the attempt, so a case that then passes
    can still say what failed first."""
    line = call.excinfo.exconly().strip().splitlines()[0] if call.excinfo is not None else "(no exception)"
    line = line if len(line) <= limit else line[: limit - 1] + "…"
    return f"{when}: {line}"


_LOG_OFFSET = pytest.StashKey[int]()
_CASE = pytest.StashKey[str]()


def _module_nodeid(item: pytest.Item) -> str:
    module = item.getparent(pytest.Module)
    return module.nodeid if module else item.nodeid


def _packages_line() -> str:
    found = []
    for name in ("numpy", "tritonclient", "nvidia-pytriton"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{name}=={importlib.metadata.version(name)}")
    return " ".join(found)
