"""BLS (business logic scripting): a python model calls other models of the same server, with sync
``exec`` and ``async_exec``; a two-model pipeline is exact; the called model's error reaches the
caller's client; a decoupled model called through BLS yields all its responses; BLS in initialize
is refused with the server's message.
"""

import numpy as np
import pytest
from pb_helpers import strings
from tritonclient.utils import InferenceServerException

pytestmark = [pytest.mark.backend("python"),
              pytest.mark.models("pb_add_one", "pb_double", "pb_fail", "pb_repeat", "pb_bls", "pb_bls_async")]

X = np.array([0, 1, -7, 2**20, -(2**20), 123456], dtype=np.int32)


def bls(client, mode, x, model="pb_bls"):
    return client.infer(model, {"MODE": strings(mode), "IN": x})["OUT"]


def test_bls_sync_exec(client):
    """exec() to pb_add_one: exactly IN + 1."""
    out = bls(client, "add_one", X)
    assert out.dtype == np.int32 and out.tolist() == (X + 1).tolist()


def test_bls_pipeline_of_two_models_is_exact(client):
    """exec() to pb_add_one, then its output to pb_double: exactly (IN + 1) * 2."""
    assert bls(client, "pipeline", X).tolist() == ((X + 1) * 2).tolist()


def test_bls_async_exec(client):
    """async_exec() to pb_add_one and pb_double awaited together: their sum, (IN + 1) + 2 * IN."""
    assert bls(client, "gather", X, model="pb_bls_async").tolist() == ((X + 1) + 2 * X).tolist()


def test_bls_error_reaches_the_caller(client):
    """The called model's error response is seen by the caller and its message reaches the client."""
    with pytest.raises(InferenceServerException) as failed:
        bls(client, "fail", np.array([7, 8], dtype=np.int32))
    assert "pb_bls: pb_fail said: pb_fail: rejected input starting with 7" in failed.value.message()


def test_bls_async_error_reaches_the_caller(client):
    """The same through async_exec in an async execute."""
    with pytest.raises(InferenceServerException) as failed:
        bls(client, "fail", np.array([9], dtype=np.int32), model="pb_bls_async")
    assert "pb_bls_async: pb_fail said: pb_fail: rejected input starting with 9" in failed.value.message()


def test_bls_to_decoupled_model_with_no_response(client):
    """exec(decoupled=True) to pb_repeat with nothing to repeat: the caller gets no response, and
    only the final flag. (Its own case, before the ones with responses: where a response crashes the
    callee, this one still shows that the stream itself works.)"""
    assert bls(client, "decoupled", np.array([], dtype=np.int32)).tolist() == []


@pytest.mark.parametrize("values", [[5], [5, 6, 7, 8, 9, 10, 11]], ids=["1", "7"])
def test_bls_to_decoupled_model_yields_every_response(client, values):
    """exec(decoupled=True) to pb_repeat: the caller gets all of its 1 or N responses, in order."""
    out = bls(client, "decoupled", np.array(values, dtype=np.int32))
    assert out.tolist() == values


def test_bls_to_decoupled_model_error_mid_stream(client):
    """An error response in the middle of a decoupled callee's stream reaches the caller (and its
    client) with the callee's message; it is not skipped while the stream goes on."""
    with pytest.raises(InferenceServerException) as failed:
        bls(client, "decoupled", np.array([1, -2, 3], dtype=np.int32))
    assert "pb_repeat: element 1 is negative (-2)" in failed.value.message()


def test_bls_in_initialize_is_refused(triton, loader):
    """BLS from initialize (to pb_add_one, loaded for this module): refused, and the load fails
    with the server's words."""
    result = loader.load("pb_bls_init")
    assert result.error is not None, "BLS in initialize was accepted"
    assert "BLS is only supported during the 'execute' function" in result.error, result.error
