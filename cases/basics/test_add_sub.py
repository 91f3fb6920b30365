"""The walking skeleton: a python model answers exactly over HTTP and gRPC."""

import numpy as np
import pytest

pytestmark = [pytest.mark.backend("python"), pytest.mark.models("add_sub")]


def test_add_sub_exact(client):
    a = np.array([1.5, -2.0, 3.25, 1e6], dtype=np.float32)
    b = np.array([0.5, 2.0, -0.25, 1.0], dtype=np.float32)
    out = client.infer("add_sub", {"INPUT0": a, "INPUT1": b})
    np.testing.assert_array_equal(out["OUTPUT0"], a + b)
    np.testing.assert_array_equal(out["OUTPUT1"], a - b)
    assert out["OUTPUT0"].dtype == np.float32


def test_add_sub_ready(client):
    """Ready, and ready means it serves: the model answers a request right after, exactly."""
    assert client.is_model_ready("add_sub")
    a = np.array([0.5, -1.0, 2.0, 8.0], dtype=np.float32)
    b = np.array([0.25, 1.0, -4.0, 8.0], dtype=np.float32)
    out = client.infer("add_sub", {"INPUT0": a, "INPUT1": b})
    np.testing.assert_array_equal(out["OUTPUT0"], a + b)
    np.testing.assert_array_equal(out["OUTPUT1"], a - b)
