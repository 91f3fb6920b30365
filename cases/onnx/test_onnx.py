"""ONNX Runtime backend: generated graphs load and answer exactly, auto-complete fills a config
from the model file, execution accelerators are accepted.

These run in onnxruntime cells (the NGC release images, docker runner). The wheels' servers have
no onnxruntime backend: there the cell is not applicable, found from the server's backend folder.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx_graphs import expected

pytestmark = pytest.mark.backend("onnxruntime")

BATCH = np.array([[1.5, -2.0, 3.25, 0.0], [-0.5, 8.0, 1e6, -1e-6]], dtype=np.float32)


@pytest.mark.models("onnx_identity")
def test_identity_is_exact(client):
    out = client.infer("onnx_identity", {"INPUT0": BATCH})
    np.testing.assert_array_equal(out["OUTPUT0"], expected("identity", {"INPUT0": BATCH})["OUTPUT0"])


@pytest.mark.models("onnx_add")
def test_add_sub_is_exact(client):
    inputs = {"INPUT0": BATCH, "INPUT1": BATCH[::-1].copy()}
    out = client.infer("onnx_add", inputs)
    for name, want in expected("add", inputs).items():
        np.testing.assert_array_equal(out[name], want)


@pytest.mark.models("onnx_dynamic")
@pytest.mark.parametrize("width", [1, 7, 64])
def test_dynamic_shape(client, width):
    data = np.linspace(-3, 3, 2 * width, dtype=np.float32).reshape(2, width)
    out = client.infer("onnx_dynamic", {"INPUT0": data})
    assert out["OUTPUT0"].shape == (2, width)
    np.testing.assert_array_equal(out["OUTPUT0"], expected("dynamic", {"INPUT0": data})["OUTPUT0"])


@pytest.mark.models("onnx_autocomplete")
def test_autocomplete_fills_the_config_from_the_model(client):
    config = client.model_config("onnx_autocomplete")
    inputs = {i["name"]: i for i in config["input"]}
    outputs = {o["name"]: o for o in config["output"]}
    assert set(inputs) == {"INPUT0", "INPUT1"} and set(outputs) == {"OUTPUT0", "OUTPUT1"}
    assert all(t["data_type"] == "TYPE_FP32" for t in (*config["input"], *config["output"]))
    # The graph's first dimension is symbolic: the backend makes it the batch dimension, with the
    # server's default-max-batch-size (4 unless --backend-config says otherwise, as documented).
    assert int(config["max_batch_size"]) == 4, config["max_batch_size"]
    for tensor in (*inputs.values(), *outputs.values()):
        assert [int(d) for d in tensor["dims"]] == [4], (tensor["name"], tensor["dims"])


@pytest.mark.models("onnx_autocomplete")
def test_autocompleted_model_answers(client):
    inputs = {"INPUT0": BATCH, "INPUT1": BATCH}
    out = client.infer("onnx_autocomplete", inputs)
    for name, want in expected("add", inputs).items():
        np.testing.assert_array_equal(out[name], want)


def test_execution_accelerators_are_accepted_and_returned(triton, http_client, loader):
    loader.require("onnx_accelerators")
    config = http_client.model_config("onnx_accelerators")
    accelerators = config["optimization"]["execution_accelerators"]["cpu_execution_accelerator"]
    assert [a["name"] for a in accelerators] == ["openvino"]
    out = http_client.infer("onnx_accelerators", {"INPUT0": BATCH})
    np.testing.assert_array_equal(out["OUTPUT0"], BATCH)
