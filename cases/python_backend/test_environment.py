"""The python execution environment of a model: sibling modules import, model-local environment
variables stay in their stub, and the stub runs the cell's Python with the cell venv's packages."""

import numpy as np
import pytest
from pb_helpers import strings

pytestmark = pytest.mark.backend("python")


@pytest.mark.models("pb_sibling_import")
def test_model_imports_a_sibling_module(client, triton):
    """model.py imports pb_sibling_helper from its own folder (found there, not elsewhere)."""
    out = client.infer("pb_sibling_import", {"IN": strings("hello")})
    assert out["OUT"][0].decode() == "helper says HELLO!"
    assert out["HELPER_FILE"][0].decode().endswith("/pb_sibling_import/1/pb_sibling_helper.py")


@pytest.mark.models("pb_env_setter", "pb_env_reader")
def test_model_local_environment_variables(client):
    """A variable set from pb_env_setter's config is seen in its stub only, not in pb_env_reader's."""
    name = {"NAME": strings("PB_ENV_MARKER")}
    assert client.infer("pb_env_setter", name)["VALUE"][0].decode() == "only-in-pb_env_setter"
    assert client.infer("pb_env_reader", name)["VALUE"][0].decode() == "<unset>"


@pytest.mark.models("pb_pyinfo")
def test_stub_python_is_the_cells_python(http_client, cell, triton):
    """The stub's interpreter is the cell's Python axis, and it imports numpy from the environment the
    server runs with (the cell's venv; in a container, the image's Python, ``triton.inside``)."""
    out = http_client.infer("pb_pyinfo", {"IN": np.array([0], dtype=np.int32)})
    version = out["PYTHON"][0].decode()
    assert version.rsplit(".", 1)[0] == cell.python, f"stub runs Python {version}, cell is {cell.python}"
    server_python = triton.inside.python()
    assert out["NUMPY"][0].decode() == server_python["numpy"]
    assert out["NUMPY_FILE"][0].decode().startswith(server_python["prefix"] + "/"), server_python
