"""The pytest plugin of models mode, beside ``harness.incell.plugin`` in the cell's pytest.

``pytest -p harness.incell.plugin -p harness.models.plugin --spec=SPEC ... harness/models/checks.py``:
the team's models (the cell spec's ``models``, ``harness.spec``) are copied into the cell's server
repository before the server starts, the checks of ``checks.py`` are parametrized with one item per
model (and protocol), each item's case id is ``models/<model>::<check>[<protocol>]``, and at the end
the answers go to ``reports/answers/<cell>.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.incell import plugin as cell_plugin
from harness import repository
from harness.errors import HarnessError
from harness.layout import Prop
from harness.models import answers, case_id, repo
from harness.models.answers import ModelAnswers
from harness.models.repo import TeamModel
from harness.servers import Server, ServerExited

CHECKS_MODULE = Path(__file__).resolve().parent / "checks.py"
PROTOCOL_CHECKS = ("answers", "conforms")


@dataclass
class ModelsRun:
    """The team's models of this cell and what they did so far."""

    models: dict[str, TeamModel]
    tolerance: dict[str, float]
    results: dict[str, ModelAnswers] = field(default_factory=dict)
    first_failures: dict[str, str] = field(default_factory=dict)  # case id -> the first attempt's message
    served: dict[str, list[Any]] = field(default_factory=dict)  # "<model>/<protocol>" -> every answer it got


RUN = pytest.StashKey[ModelsRun]()


@pytest.hookimpl(trylast=True)  # after harness.incell.plugin registered the cell's plugin
def pytest_configure(config: pytest.Config) -> None:
    state = config.pluginmanager.get_plugin(cell_plugin.PLUGIN_NAME)
    if state is None or not state.spec.models:
        return
    dirs = list(state.spec.models)
    try:
        models = repo.discover(dirs)
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[RUN] = ModelsRun(models=models, tolerance=dict(state.spec.tolerance),
                                  results={name: ModelAnswers() for name in models})


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Render the case library's repository now and add the team's models to it, so the server that
    ``harness.incell.plugin`` starts later (it renders only a repository that is not there yet) serves both."""
    run = session.config.stash.get(RUN, None)
    state = session.config.pluginmanager.get_plugin(cell_plugin.PLUGIN_NAME)
    if run is None or state is None:
        return
    target = state.workdir / "repository"
    try:
        repository.render(state.case_roots, state.cell, target)
        repo.install(run.models, target)
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if Path(str(metafunc.definition.path)).resolve() != CHECKS_MODULE:
        return
    run = metafunc.config.stash.get(RUN, None)
    names = repo.load_order(run.models) if run else []  # each after the models its ensemble or BLS code runs
    if "model" in metafunc.fixturenames:
        metafunc.parametrize("model", names, ids=names)
    if "protocol" in metafunc.fixturenames:
        metafunc.parametrize("protocol", ("http", "grpc"))


@pytest.hookimpl(tryfirst=True)  # before harness.incell.plugin adds its own "case": the report reads the first
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(item, "callspec", None)
        if Path(str(item.path)).resolve() != CHECKS_MODULE or params is None:
            continue
        check = item.originalname.removeprefix("test_").replace("_", "-")  # type: ignore[attr-defined]
        item.user_properties.insert(0, (Prop.CASE, case_id(params.params["model"], check,
                                                           params.params.get("protocol"))))


@pytest.fixture(scope="session")
def models_run(request: pytest.FixtureRequest) -> ModelsRun:
    run = request.config.stash.get(RUN, None)
    if run is None:
        raise pytest.UsageError("models mode needs a cell spec that names models (python -m harness cell --models DIR)")
    return run


class ServerKeeper:
    """The cell's server for the checks, with the team's models that had loaded loaded again after
    the cell's plugin started it anew (a model whose stub took the server down must not turn every
    later model red: the check that killed it fails naming it, the next check gets a fresh server)."""

    def __init__(self, plugin: cell_plugin.CellPlugin, run: ModelsRun) -> None:
        self.plugin, self.run = plugin, run
        self.generation: int | None = None

    @property
    def server(self) -> Server:
        server = self.plugin.server
        if server is None:
            raise ServerExited("the cell's server is not running")
        if self.generation is not None and server.generation != self.generation:
            for name in repo.load_order(self.run.models):
                if self.run.results[name].loaded:
                    server.load(name, config=repo.override(self.run.models[name], self.plugin.cell)[0])
        self.generation = server.generation
        return server


@pytest.fixture(scope="session")
def models_keeper(request: pytest.FixtureRequest, triton: Server, models_run: ModelsRun) -> ServerKeeper:
    return ServerKeeper(cell_plugin.plugin_of(request.config), models_run)


@pytest.fixture
def server(models_keeper: ServerKeeper) -> Server:
    """The live server for one check (started again by the cell's plugin after a check killed it)."""
    return models_keeper.server


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run = session.config.stash.get(RUN, None)
    state = session.config.pluginmanager.get_plugin(cell_plugin.PLUGIN_NAME)
    if run is None or state is None:
        return
    axes = {k: v for k, v in state.cell.as_dict().items() if k not in ("id", "gpu")}
    answers.write(state.reports, state.cell.id, axes, run.results)
