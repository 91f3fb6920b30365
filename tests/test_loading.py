"""harness.incell.loading: the one way a case loads models, against a stand-in server (no tritonserver)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.incell.loading import ModelLoader
from harness.servers import LoadResult

pytestmark = pytest.mark.fast


class FakeServer:
    """What ModelLoader asks of a server: load, unload, the index, the stubs, whether it runs."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.refuse = refuse
        self.ready: set[str] = set()
        self.calls: list[tuple[str, str, Any]] = []
        self.alive = True

    def load(self, model: str, *, config: str | None = None, files: Any = None) -> LoadResult:
        self.calls.append(("load", model, config))
        if model in self.refuse:
            return LoadResult(model=model, error=f"{model} refused", log="")
        self.ready.add(model)
        return LoadResult(model=model, error=None, log="")

    def unload(self, model: str) -> None:
        self.calls.append(("unload", model, None))
        self.ready.discard(model)

    def live_stubs(self, model: str) -> list[int]:
        return []

    def http_client(self) -> Any:
        server = self

        class Client:
            def get_model_repository_index(self) -> list[dict[str, str]]:
                return [{"name": m, "state": "READY"} for m in server.ready]

            def close(self) -> None:
                pass

        return Client()


def each(action: Any, names: list[str]) -> list[Any]:
    return [action(n) for n in dict.fromkeys(names)]


def test_require_fails_the_case_with_the_servers_message_and_skips_what_is_loaded() -> None:
    server = FakeServer(refuse=("bad",))
    loader = ModelLoader(lambda: server, each)
    loader.require("a", "b")
    loader.require("a")
    with pytest.raises(pytest.fail.Exception, match="model 'bad' failed to load: bad refused"):
        loader.require("a", "bad")
    assert [c[:2] for c in server.calls] == [("load", "a"), ("load", "b"), ("load", "bad")]
    assert loader.loaded == ["a", "b"]


def test_a_config_of_the_cases_own_is_sent_as_json_for_one_model() -> None:
    server = FakeServer()
    loader = ModelLoader(lambda: server, each)
    loader.require("m", config={"max_batch_size": 0})
    assert server.calls == [("load", "m", '{"max_batch_size": 0}')]
    with pytest.raises(TypeError, match="a config belongs to one model"):
        loader.require("m", "n", config="{}")


def test_close_unloads_newest_first_on_every_server_it_used_but_not_on_a_dead_one() -> None:
    cell, spare, killed = FakeServer(), FakeServer(), FakeServer()
    loader = ModelLoader(lambda: cell, each)
    loader.load("first")
    loader.load("second", config='{"name": "second"}')
    loader.on(spare).require("s")
    loader.on(killed).require("k")
    killed.alive = False  # the case ended that server itself: nothing to unload there
    loader.unload("first")
    loader.close()
    assert [c[:2] for c in cell.calls] == [("load", "first"), ("load", "second"), ("unload", "first"),
                                           ("unload", "second")]
    assert [c[:2] for c in spare.calls] == [("load", "s"), ("unload", "s")]
    assert [c[:2] for c in killed.calls] == [("load", "k")]


def test_a_loader_that_loaded_nothing_asks_for_no_server() -> None:
    def no_server() -> FakeServer:
        raise AssertionError("the worker's server was started for a case that loads nothing")

    ModelLoader(no_server, each).close()


def test_the_models_marker_unloads_its_module_at_once() -> None:
    server = FakeServer()
    loader = ModelLoader(lambda: server, each)
    loader.require("b", "a")
    loader.unload_all_at_once()
    assert [c[:2] for c in server.calls][2:] == [("unload", "a"), ("unload", "b")]
    assert loader.loaded == []
