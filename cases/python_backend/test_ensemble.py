"""Ensembles of python models: exact outputs through two steps, and a failing step's error
reported to the client with the step's message."""

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

pytestmark = [pytest.mark.backend("python"),
              pytest.mark.models("pb_add_one", "pb_double", "pb_fail", "pb_ens_pipeline", "pb_ens_error")]

X = np.array([3, -4, 0, 2**24, -(2**24)], dtype=np.int32)


def test_ensemble_python_to_python_is_exact(client):
    """pb_add_one -> pb_double: exactly (IN + 1) * 2."""
    out = client.infer("pb_ens_pipeline", {"IN": X})["OUT"]
    assert out.dtype == np.int32 and out.tolist() == ((X + 1) * 2).tolist()


def test_ensemble_step_error_is_reported(client):
    """pb_add_one -> pb_fail: the client gets pb_fail's message (with the first step's output in it)."""
    with pytest.raises(InferenceServerException) as failed:
        client.infer("pb_ens_error", {"IN": X})
    message = failed.value.message()
    assert "pb_fail: rejected input starting with 4" in message, message
    assert "pb_ens_error" in message, message
