"""Auto-complete: a python model's ``auto_complete_config`` completes a minimal config.pbtxt.

Conflicts between config.pbtxt and auto-complete are data-driven invalid configs
(``invalid/models/cfg_bad_autocomplete_*``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from cfg_support import config_from_dict

from harness.client import Client

pytestmark = pytest.mark.backend("python")


def tensors(config: Any, kind: str) -> list[tuple[str, str, list[int]]]:
    from tritonclient.grpc import model_config_pb2

    return [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in getattr(config, kind)]


@pytest.mark.models("cfg_ac_complete")
def test_minimal_config_is_completed(client: Any) -> None:
    """config.pbtxt says only ``backend: "python"``; the served config has what auto-complete added."""
    config = config_from_dict(client.model_config("cfg_ac_complete"))
    assert config.name == "cfg_ac_complete"
    assert config.backend == "python"
    assert config.max_batch_size == 8
    assert tensors(config, "input") == [("INPUT0", "TYPE_FP32", [4])]
    assert tensors(config, "output") == [("OUTPUT0", "TYPE_FP32", [4])]
    assert config.HasField("dynamic_batching"), "auto-complete set dynamic batching; the served config has none"
    assert len(config.instance_group) >= 1, "no instance group was filled in"


@pytest.mark.models("cfg_ac_complete")
def test_completed_config_serves_batches(client: Any) -> None:
    """The completed config is the live one: a batch of 3 (<= the auto-completed 8) is served."""
    batch = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = client.infer("cfg_ac_complete", {"INPUT0": batch})
    np.testing.assert_array_equal(out["OUTPUT0"], batch * 2)


@pytest.mark.models("cfg_ac_narrower")
def test_set_max_batch_size_overrides_a_smaller_config_value(client: Any) -> None:
    """config.pbtxt says max_batch_size 4; ``set_max_batch_size(8)`` in auto-complete replaces it.

    The python backend docs say a config may ask for less than the model file; the utility only
    refuses more (see cfg_bad_autocomplete_max_batch_size) and otherwise sets its own value, so the
    served config has 8. A model that wants the config to win must check ``max_batch_size()`` first.
    """
    config = config_from_dict(client.model_config("cfg_ac_narrower"))
    assert config.max_batch_size == 8
    assert tensors(config, "input") == [("INPUT0", "TYPE_FP32", [4])]


def test_disable_auto_complete_config(triton_factory: Any) -> None:
    """With ``--disable-auto-complete-config`` the model's ``auto_complete_config`` is not called: the
    minimal config stays minimal, and a config that contradicts auto-complete loads unchallenged."""
    with triton_factory("--disable-auto-complete-config") as spare:
        client = Client("http", spare.http_client())
        try:
            result = spare.load("cfg_ac_complete")
            assert result.error is None, result.error
            config = config_from_dict(client.model_config("cfg_ac_complete"))
            assert config.max_batch_size == 0
            assert not config.input and not config.output, "auto-complete ran although it is disabled"
            assert not config.HasField("dynamic_batching")
            conflict = spare.load("cfg_bad_autocomplete_data_type")
            assert conflict.error is None, f"the auto-complete conflict was detected without auto-complete: {conflict.error}"
            config = config_from_dict(client.model_config("cfg_bad_autocomplete_data_type"))
            assert tensors(config, "input") == [("INPUT0", "TYPE_INT32", [4])]
        finally:
            client.close()


def test_default_max_batch_size_leaves_python_models_alone(triton_factory: Any) -> None:
    """``--backend-config=default-max-batch-size=N`` is for backends that auto-complete batching
    themselves (TensorFlow, ONNX Runtime); a python model's auto-completed max_batch_size is its own."""
    with triton_factory("--backend-config=default-max-batch-size=6") as spare:
        client = Client("http", spare.http_client())
        try:
            for name, expected in (("cfg_ac_unbatched", 0), ("cfg_ac_complete", 8)):
                result = spare.load(name)
                assert result.error is None, result.error
                config = config_from_dict(client.model_config(name))
                assert config.max_batch_size == expected, f"{name}: max_batch_size {config.max_batch_size}"
                assert config.HasField("dynamic_batching")
        finally:
            client.close()
