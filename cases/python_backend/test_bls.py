"""BLS (business logic scripting): a python model calls other models of the same server, with sync
``exec`` and ``async_exec``; a two-model pipeline is exact; the called model's error reaches the
caller's client; a decoupled model called through BLS yields all its responses; BLS in initialize
is refused with the server's message.
"""

import os
import signal

import numpy as np
import pytest
from pb_helpers import LOCAL, bounded_client_for, read_proc, strings, stubs, wait_until
from tritonclient.utils import InferenceServerException

pytestmark = [pytest.mark.backend("python"),
              pytest.mark.models("pb_add_one", "pb_double", "pb_fail", "pb_repeat", "pb_bls", "pb_bls_async")]

X = np.array([0, 1, -7, 2**20, -(2**20), 123456], dtype=np.int32)
# (release, Python) cells where BLS to a decoupled model kills the callee's stub with SIGSEGV.
DECOUPLED_BLS_SEGFAULTS = {("24.10", "3.12")}
# BLS to a decoupled model whose stream holds an error response: every release seen so far skips the
# error response in the caller's iteration (the error is lost, the stream goes on), a gap to show.
DECOUPLED_BLS_DROPS_ERRORS = {"23.10", "23.12", "24.03", "24.07", "24.10"}


def bls(client, mode, x, model="pb_bls"):
    return client.infer(model, {"MODE": strings(mode), "IN": x})["OUT"]


@pytest.fixture
def decoupled_bls(cell, release):
    """Skips (not applicable) where BLS to a decoupled model is known to crash the callee's stub:
    there, test_bls_to_decoupled_model_known_crash holds the cell to that crash instead."""
    if (release.name, cell.python) in DECOUPLED_BLS_SEGFAULTS:
        pytest.skip(f"not-applicable: BLS to a decoupled model crashes its stub (SIGSEGV) on Triton "
                    f"{release.name} with Python {cell.python}; test_bls_to_decoupled_model_known_crash holds it")


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


@pytest.mark.parametrize("values", [[], [5], [5, 6, 7, 8, 9, 10, 11]], ids=["0", "1", "7"])
def test_bls_to_decoupled_model_yields_every_response(client, values, decoupled_bls):
    """exec(decoupled=True) to pb_repeat: the caller gets all of its 0, 1 or N responses, in order."""
    out = bls(client, "decoupled", np.array(values, dtype=np.int32))
    assert out.tolist() == values


def test_bls_to_decoupled_model_error_mid_stream(client, release, decoupled_bls):
    """An error response in the middle of a decoupled callee's stream should reach the caller.

    Per release: every release seen so far silently skips the error response in the caller's
    iteration (the caller sees 1 and 3, never the error); later releases are held to delivering it.
    """
    x = np.array([1, -2, 3], dtype=np.int32)
    if release.name in DECOUPLED_BLS_DROPS_ERRORS:
        assert bls(client, "decoupled", x).tolist() == [1, 3]
    else:
        with pytest.raises(InferenceServerException) as failed:
            bls(client, "decoupled", x)
        assert "pb_repeat: element 1 is negative (-2)" in failed.value.message()


def test_bls_in_initialize_is_refused(triton, loader):
    """BLS from initialize (to pb_add_one, loaded for this module): refused, and the load fails
    with the server's words."""
    result = loader.load("pb_bls_init")
    assert result.error is not None, "BLS in initialize was accepted"
    assert "BLS is only supported during the 'execute' function" in result.error, result.error


@LOCAL
def test_bls_to_decoupled_model_known_crash(triton_factory, private_loader, cell, release):
    """Where BLS to a decoupled model is known to crash (24.10 with Python 3.12): the caller gets the
    backend's "not healthy" error quickly and the callee's stub is dead by SIGSEGV. Holds those
    cells to the crash, so that a fix shows up; on a server of its own (the crash is not undone)."""
    if (release.name, cell.python) not in DECOUPLED_BLS_SEGFAULTS:
        pytest.skip(f"not-applicable: no known BLS crash on Triton {release.name} with Python {cell.python}")
    with triton_factory() as server:
        loader = private_loader(server)
        loader.require("pb_repeat", "pb_bls")
        (callee,) = stubs(server, "pb_repeat")
        client = bounded_client_for(server, "http")
        try:
            with pytest.raises(InferenceServerException) as failed:
                bls(client, "decoupled", np.array([5], dtype=np.int32))
        finally:
            client.close()
        assert "pb_bls: pb_repeat said: Stub process 'pb_repeat_0_0' is not healthy" in failed.value.message()
        dead = wait_until(lambda: (p := read_proc(callee.pid)) is not None and p.zombie and p, 10,
                          "the callee's stub to be dead")
        assert os.WTERMSIG(dead.exit_code) == signal.SIGSEGV, dead.exit_code
        loader.loaded.clear()
        server.kill("the case is over")
