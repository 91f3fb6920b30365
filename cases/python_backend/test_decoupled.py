"""Decoupled and async execution over gRPC streaming: 0, 1 and N responses with the final flag in
the right place, an error mid-stream, client-side cancellation seen by the model (is_cancelled),
and ``async def execute`` overlapping requests on one instance where the release does it.
"""

import queue
import uuid

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from pb_helpers import CASE_TIMEOUT_S, strings, stub_trouble, wait_until

pytestmark = pytest.mark.backend("python")

DECOUPLED_MUST_RETURN_NONE = "is using the decoupled mode and the execute function must return None"


def _tensors(arrays):
    out = []
    for name, array in arrays.items():
        dtype = {np.int32: "INT32", np.bool_: "BOOL", np.object_: "BYTES", np.float32: "FP32"}[array.dtype.type]
        tensor = grpcclient.InferInput(name, list(array.shape), dtype)
        tensor.set_data_from_numpy(array)
        out.append(tensor)
    return out


class Stream:
    """One gRPC stream of its own; ``events`` receives (result, error) from the server."""

    def __init__(self, server):
        self.client = server.grpc_client()
        self.events: queue.Queue = queue.Queue()
        self.client.start_stream(callback=lambda result, error: self.events.put((result, error)))

    def send(self, model, arrays, **kwargs):
        self.client.async_stream_infer(model, _tensors(arrays), enable_empty_final_response=True, **kwargs)

    def collect(self, output="OUT"):
        """Responses until the final flag: (value list or None, final) or ("error", message)."""
        got = []
        while True:
            result, error = self.events.get(timeout=CASE_TIMEOUT_S)
            if error is not None:
                got.append(("error", error.message()))
                continue
            final = result.get_response().parameters["triton_final_response"].bool_param
            value = result.as_numpy(output)
            got.append((None if value is None else value.tolist(), final))
            if final:
                return got

    def close(self, **kwargs):
        try:
            self.client.stop_stream(**kwargs)
        finally:
            self.client.close()


@pytest.fixture
def stream(triton):
    opened = []

    def open_stream():
        opened.append(Stream(triton))
        return opened[-1]

    yield open_stream
    for s in opened:
        s.close()


def repeat(stream, values, final_with_last=False):
    s = stream()
    s.send("pb_repeat", {"IN": np.array(values, dtype=np.int32),
                         "FINAL_WITH_LAST": np.array([final_with_last], dtype=np.bool_)})
    return s.collect()


@pytest.mark.models("pb_repeat")
@pytest.mark.parametrize("values", [[], [42], [3, 1, 4, 1, 5]], ids=["0", "1", "N"])
def test_stream_responses_then_final_flag(stream, values):
    """0, 1 or N responses, each without the final flag, then one empty response that carries it."""
    assert repeat(stream, values) == [([v], False) for v in values] + [(None, True)]


@pytest.mark.models("pb_repeat")
@pytest.mark.parametrize("values", [[42], [3, 1, 4, 1, 5]], ids=["1", "N"])
def test_stream_final_flag_on_the_last_response(stream, values):
    """Final flag sent with the last response: it is on that response, and nothing comes after."""
    got = repeat(stream, values, final_with_last=True)
    assert got == [([v], False) for v in values[:-1]] + [([values[-1]], True)]


@pytest.mark.models("pb_repeat")
def test_stream_error_mid_stream(stream):
    """An error response in the middle reaches the client as an error with its message; the
    responses around it and the final flag still arrive, in order."""
    got = repeat(stream, [1, -2, 3])
    assert got == [([1], False), ("error", "pb_repeat: element 1 is negative (-2)"), ([3], False), (None, True)]


@pytest.mark.models("pb_wait_cancel")
def test_client_cancellation_is_seen_by_the_model(stream, triton):
    """Cancelling the stream (stop_stream(cancel_requests=True)) while the model holds the request:
    the model sees is_cancelled() and says so, well before its own 15 s limit."""
    tag = uuid.uuid4().hex[:12]
    offset = triton.log_offset()
    ended = stub_trouble(triton)
    s = stream()
    s.send("pb_wait_cancel", {"TAG": strings(tag)})
    wait_until(lambda: f"PB_WAIT_CANCEL waiting tag={tag}" in triton.log_since(offset), CASE_TIMEOUT_S,
               "the model to hold the request", unless=ended)
    s.client.stop_stream(cancel_requests=True)
    wait_until(lambda: f"PB_WAIT_CANCEL cancelled tag={tag}" in triton.log_since(offset), 10,
               "the model to see the cancellation")
    assert f"PB_WAIT_CANCEL not cancelled tag={tag}" not in triton.log_since(offset)


def _overlap(stream, triton, model, timeout, decoupled):
    """Send "wait", and once the model awaits it, "set"; returns (wait OK, set OK)."""
    offset = triton.log_offset()
    ended = stub_trouble(triton)
    first, second = stream(), stream()

    def arrays(role):
        return {"ROLE": strings(role), "TIMEOUT": np.array([timeout], dtype=np.float32)}

    if decoupled:
        first.send(model, arrays("wait"))
    else:
        first.client.async_infer(model, _tensors(arrays("wait")), client_timeout=CASE_TIMEOUT_S,
                                 callback=lambda result, error: first.events.put((result, error)))
    wait_until(lambda: "PB_ASYNC waiting" in triton.log_since(offset), CASE_TIMEOUT_S,
               "the first request to be awaiting", unless=ended)
    if decoupled:
        second.send(model, arrays("set"))
        return first.collect("OK")[0][0], second.collect("OK")[0][0]
    result = second.client.infer(model, _tensors(arrays("set")), client_timeout=CASE_TIMEOUT_S)
    waited, error = first.events.get(timeout=CASE_TIMEOUT_S)
    assert error is None, error
    return waited.as_numpy("OK").tolist(), result.as_numpy("OK").tolist()


@pytest.mark.min_triton("24.07")  # async def execute of a decoupled model arrived in 24.07
@pytest.mark.models("pb_async_overlap")
def test_async_execute_overlaps_requests_on_one_instance(stream, triton):
    """Decoupled model, async def execute, one instance: a second request runs while the first
    awaits (it releases the first)."""
    assert _overlap(stream, triton, "pb_async_overlap", 10.0, decoupled=True) == ([True], [True])


@pytest.mark.max_triton("24.03")
@pytest.mark.models("pb_async_overlap")
def test_async_decoupled_execute_refused_before_support(stream):
    """Before 24.07 a decoupled execute may not be a coroutine: the request fails with the
    backend's message, quickly (the documented limit of those releases, not a hang)."""
    s = stream()
    s.send("pb_async_overlap", {"ROLE": strings("wait"), "TIMEOUT": np.array([1.0], dtype=np.float32)})
    _result, error = s.events.get(timeout=CASE_TIMEOUT_S)
    assert error is not None, "the async decoupled execute answered"
    assert DECOUPLED_MUST_RETURN_NONE in error.message(), error.message()


@pytest.mark.models("pb_async_default")
def test_async_execute_default_mode_runs_one_at_a_time(stream, triton):
    """Non-decoupled model, async def execute: each execute runs to completion before the next, on
    every release seen (the first request times out waiting, the second finds nobody waiting)."""
    assert _overlap(stream, triton, "pb_async_default", 1.5, decoupled=False) == ([False], [False])
