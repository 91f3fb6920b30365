"""Valid configs load, and the server returns what was written (data-driven: one folder per config).

Every folder under ``valid/models/`` is loaded once for the module; each case reads the config back
(``GET /v2/models/<m>/config`` over HTTP, ``ModelConfig`` over gRPC) and compares it field by field
with the folder's ``config.pbtxt`` as rendered for the cell: every field written must come back with
the same value (the server may add defaults, never change or drop what was written).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfg_support import config_differences, config_from_dict, error_lines, index_states, parse_pbtxt

from harness.repository import render_config

HERE = Path(__file__).resolve().parent
FOLDERS = sorted(p for p in (HERE / "valid" / "models").iterdir() if p.is_dir() and p.name != "__pycache__")

pytestmark = pytest.mark.backend("python")

# The versions each version_policy must serve, from the folders' version directories (the default
# policy is latest { num_versions: 1 }, and every other folder has only version 1).
READY_VERSIONS = {
    "cfg_valid_version_policy_all": {"1", "2"},  # all {}: versions 1 and 2
    "cfg_valid_version_policy_latest": {"2", "3"},  # latest { num_versions: 2 } of 1, 2, 3
    "cfg_valid_version_policy_specific": {"1"},  # specific { versions: [1] } of 1, 2
}


@pytest.fixture(scope="module")
def loaded(triton: Any, each_model: Any) -> Iterator[dict[str, Any]]:
    """Load every valid model once, all at once; unload them all after the module."""
    names = [folder.name for folder in FOLDERS]
    yield dict(zip(names, each_model(triton.load, names)))
    each_model(triton.unload, names)


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_config_round_trips(folder: Path, loaded: dict[str, Any], client: Any, cell: Any) -> None:
    """The model loads and every field of its config.pbtxt comes back unchanged."""
    name = folder.name
    result = loaded[name]
    assert result.error is None, f"{name} failed to load: {result.error}\n{error_lines(result.log)}"
    written = parse_pbtxt(render_config(folder / "config.pbtxt", cell))
    served = config_from_dict(client.model_config(name))
    problems = config_differences(written, served)
    assert not problems, f"{name}: the config the server returns differs from config.pbtxt:\n" + "\n".join(problems)
    ready = {v for v, (state, _) in index_states(client, name).items() if state == "READY"}
    want = READY_VERSIONS.get(name, {"1"})
    assert ready == want, f"{name}: READY versions {sorted(ready)}, but its version_policy serves {sorted(want)}"


def test_duplicate_tensor_names_are_refused(triton: Any, http_client: Any, loader: Any) -> None:
    """A config that names an input and an output twice is invalid (a tensor name identifies one
    tensor of the request): the load must fail. Releases that load it anyway are declared in
    cases/known_issues.toml."""
    result = loader.load("cfg_dup_names")
    if result.error is None:
        served = config_from_dict(http_client.model_config("cfg_dup_names"))
        pytest.fail(f"cfg_dup_names LOADED although it names inputs {[t.name for t in served.input]} and "
                    f"outputs {[t.name for t in served.output]}", pytrace=False)
    assert "INPUT0" in result.error or "OUTPUT0" in result.error, result.error
