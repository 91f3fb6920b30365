"""Model control through the repository API: load, unload, reload, config and file overrides,
version policies, and the states the repository index reports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from cfg_support import config_from_dict, index_states, rejected, wait_until_unloaded

MODEL = "cfg_ctl_versions"
NEVER = "cfg_ctl_never"
BROKEN = "cfg_bad_zero_dimension"  # a data-driven invalid config (invalid/models/)
X = {"INPUT0": np.array([1.0], dtype=np.float32)}

pytestmark = pytest.mark.backend("python")


def override(label: str, versions: list[int] | None = None) -> str:
    """A complete config for cfg_ctl_versions, as the load request's JSON override."""
    config: dict[str, Any] = {
        "backend": "python",
        "max_batch_size": 0,
        "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [1]}],
        "output": [{"name": "VERSION", "data_type": "TYPE_INT32", "dims": [1]},
                   {"name": "LABEL", "data_type": "TYPE_STRING", "dims": [1]}],
        "parameters": {"label": {"string_value": label}},
    }
    if versions is not None:
        config["version_policy"] = {"specific": {"versions": versions}}
    return json.dumps(config)


def ready_versions(client: Any, model: str = MODEL) -> set[str]:
    return {v for v, (state, _) in index_states(client, model).items() if state == "READY"}


def answer(client: Any, version: str = "") -> tuple[int, str]:
    out = client.infer(MODEL, X, model_version=version)
    label = out["LABEL"][0]
    return int(out["VERSION"][0]), label.decode() if isinstance(label, bytes) else str(label)


@pytest.fixture
def cleanup(triton: Any, http_client: Any) -> Iterator[None]:
    """Whatever the case loaded of cfg_ctl_versions is unloaded (completely) after it."""
    yield
    triton.unload(MODEL)
    wait_until_unloaded(http_client, MODEL)


def test_load_unload_reload(client: Any, cleanup: None) -> None:
    """Explicit load, unload and load again, through this protocol's repository API."""
    timeout = {"client_timeout": 60} if client.protocol == "grpc" else {}
    client.raw.load_model(MODEL, **timeout)
    assert client.is_model_ready(MODEL)
    assert ready_versions(client) == {"2", "3"}
    assert answer(client) == (3, "from-file"), "the default version is not the highest one"
    client.raw.unload_model(MODEL)
    states = wait_until_unloaded(client, MODEL)
    assert not client.is_model_ready(MODEL)
    assert {states[v][0] for v in ("2", "3")} == {"UNAVAILABLE"}, states
    assert all("unloaded" in states[v][1] for v in ("2", "3")), states
    client.raw.load_model(MODEL, **timeout)
    assert client.is_model_ready(MODEL)
    assert answer(client, "2") == (2, "from-file")


def test_version_policy_latest_n(client: Any, triton: Any, cleanup: None, release: Any) -> None:
    """latest { num_versions: 2 } serves versions 2 and 3; version 1 is refused by name."""
    result = triton.load(MODEL)
    assert result.error is None, result.error
    assert answer(client, "2")[0] == 2
    assert answer(client, "3")[0] == 3
    exc = rejected(lambda: answer(client, "1"))
    assert re.search(r"'cfg_ctl_versions' version 1\b", exc.message()), exc.message()
    assert not client.raw.is_model_ready(MODEL, "1")


def test_load_with_config_override(client: Any, triton: Any, http_client: Any, cleanup: None) -> None:
    """A config passed in the load request replaces config.pbtxt (version policy and parameters
    included); after an unload, a plain load serves config.pbtxt again."""
    result = triton.load(MODEL, config=override("from-override", versions=[1]))
    assert result.error is None, result.error
    served = config_from_dict(client.model_config(MODEL))
    assert served.parameters["label"].string_value == "from-override"
    assert list(served.version_policy.specific.versions) == [1]
    assert ready_versions(client) == {"1"}
    assert answer(client) == (1, "from-override")
    triton.unload(MODEL)
    wait_until_unloaded(http_client, MODEL)
    result = triton.load(MODEL)
    assert result.error is None, result.error
    assert config_from_dict(client.model_config(MODEL)).parameters["label"].string_value == "from-file"
    assert ready_versions(client) == {"2", "3"}
    assert answer(client) == (3, "from-file")


def test_plain_load_after_override(client: Any, triton: Any, http_client: Any, cleanup: None,
                                   release: Any) -> None:
    """Loading an override-loaded model again without a config: up to 23.12 it is reloaded from
    config.pbtxt; from 24.03 the load is a no-op and the override stays, because the repository
    files did not change since (the server compares their modification times).

    The first load of a python version writes its ``__pycache__`` into the repository, which the
    server counts as a change; a warm-up load makes the comparison about the config alone.
    """
    result = triton.load(MODEL, config=override("from-override", versions=[1]))  # the warm-up
    assert result.error is None, result.error
    assert answer(client) == (1, "from-override")
    triton.unload(MODEL)
    wait_until_unloaded(http_client, MODEL)
    result = triton.load(MODEL, config=override("from-override", versions=[1]))
    assert result.error is None, result.error
    result = triton.load(MODEL)
    assert result.error is None, result.error
    expected = release.pick({"default": (3, "from-file"), "24.03": (1, "from-override")})
    assert answer(client) == expected, "a plain load after an override load"


def test_load_with_file_override(client: Any, triton: Any, http_client: Any, cleanup: None,
                                 request: Any) -> None:
    """Model files passed in the load request are served instead of the repository's."""
    source = (request.path.parent / "models" / MODEL / "1" / "model.py").read_text(encoding="utf-8")
    patched = source.replace('self.version = int(args["model_version"])', "self.version = 42")
    assert patched != source
    result = triton.load(MODEL, config=override("from-files"), files={"file:1/model.py": patched.encode()})
    assert result.error is None, result.error
    assert answer(client) == (42, "from-files")
    triton.unload(MODEL)
    wait_until_unloaded(http_client, MODEL)
    result = triton.load(MODEL)
    assert result.error is None, result.error
    assert answer(client) == (3, "from-file")


def test_repository_index_states(client: Any, triton: Any, cleanup: None) -> None:
    """The index lists every model of the repository: READY per loaded version, UNAVAILABLE with the
    reason for a failed load, and no state for a model never loaded."""
    assert triton.load(MODEL).error is None
    failed = triton.load(BROKEN)
    try:
        assert failed.error is not None
        broken = index_states(client, BROKEN)
        assert broken.get("1", ("", ""))[0] == "UNAVAILABLE", broken
        assert "dimension must be integer >= 1" in broken["1"][1], broken
        assert ready_versions(client) == {"2", "3"}
        never = index_states(client, NEVER)
        assert never == {"": ("", "")}, f"{NEVER} was never loaded but the index says {never}"
    finally:
        triton.unload(BROKEN)


def test_load_of_unknown_model_is_refused(client: Any, triton: Any) -> None:
    """Loading a name that is not in the repository fails with the name in the message."""
    result = triton.load("cfg_no_such_model")
    assert result.error is not None, "a model that does not exist loaded"
    assert "cfg_no_such_model" in result.error, result.error
    assert not client.is_model_ready("cfg_no_such_model")
    assert not index_states(client, "cfg_no_such_model")
