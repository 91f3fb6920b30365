"""Error propagation: what a python model raises or returns as an error reaches the client with its
message and the right HTTP status / gRPC code; one bad request of a batch fails alone; the failure
counter counts failed requests; errors in finalize and auto_complete_config are reported; nothing
hangs (every request here is bounded in time).
"""

import queue
import time

import numpy as np
import pytest
from pb_helpers import CASE_TIMEOUT_S, metric_total, strings, stubs, wait_until
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.backend("python")

# TritonError code -> (HTTP status, gRPC status code), as the server maps them (the contract; releases
# that map otherwise are declared in cases/known_issues.toml).
CODES = {
    "UNKNOWN": ("400", "StatusCode.UNKNOWN"),
    "INTERNAL": ("500", "StatusCode.INTERNAL"),
    "NOT_FOUND": ("404", "StatusCode.NOT_FOUND"),
    "INVALID_ARG": ("400", "StatusCode.INVALID_ARGUMENT"),
    "UNAVAILABLE": ("503", "StatusCode.UNAVAILABLE"),
    "UNSUPPORTED": ("501", "StatusCode.UNIMPLEMENTED"),
    "ALREADY_EXISTS": ("400", "StatusCode.ALREADY_EXISTS"),
    "CANCELLED": ("400", "StatusCode.CANCELLED"),
}


def expected_status(client, code):
    http, grpc = CODES[code]
    return grpc if client.protocol == "grpc" else http


@pytest.mark.models("pb_raise")
def test_execute_exception_reaches_the_client(bounded_client, client):
    """An exception in execute: an error response carrying the exception's type and message
    (INTERNAL), quickly; the model serves the next request."""
    started = time.monotonic()
    with pytest.raises(InferenceServerException) as failed:
        bounded_client.infer("pb_raise", {"X": np.array([-5], dtype=np.int32)})
    assert time.monotonic() - started < 10
    assert "ValueError: pb_raise: cannot handle negative X=-5" in failed.value.message()
    assert failed.value.status() == expected_status(client, "INTERNAL")
    out = bounded_client.infer("pb_raise", {"X": np.array([21], dtype=np.int32)})
    assert out["Y"].tolist() == [42]


@pytest.mark.models("pb_error_codes")
@pytest.mark.parametrize("code", list(CODES))
def test_triton_error_code_maps_to_status(bounded_client, client, code):
    """pb_utils.TritonError(message, code) -> that code's HTTP status / gRPC code, and the message."""
    with pytest.raises(InferenceServerException) as failed:
        bounded_client.infer("pb_error_codes", {"CODE": strings(code)})
    assert failed.value.message() == f"pb_error_codes: failing with {code} on purpose"
    assert failed.value.status() == expected_status(client, code)


def _batch_of_four(triton, values):
    """Send four requests at once over gRPC (the dynamic batcher holds them until all four are in)."""
    import tritonclient.grpc as grpcclient

    results: queue.Queue = queue.Queue()
    client = triton.grpc_client()
    try:
        for value in values:
            tensor = grpcclient.InferInput("X", [1, 1], "INT32")
            tensor.set_data_from_numpy(np.array([[value]], dtype=np.int32))
            client.async_infer("pb_batch_errors", [tensor], client_timeout=CASE_TIMEOUT_S,
                               callback=lambda result, error, v=value: results.put((v, result, error)))
        got = {}
        for _ in values:
            value, result, error = results.get(timeout=CASE_TIMEOUT_S + 5)
            got[value] = error if error is not None else (result.as_numpy("Y"), result.as_numpy("BATCH"))
        return got
    finally:
        client.close()


@pytest.mark.models("pb_batch_errors")
def test_one_bad_request_in_a_batch_fails_alone(triton):
    """Four requests in ONE execute call (BATCH == 4): the negative one gets its error, the other
    three their exact result."""
    got = _batch_of_four(triton, [1, -2, 3, 4])
    error = got.pop(-2)
    assert isinstance(error, InferenceServerException), error
    assert "pb_batch_errors: X=-2 is negative" in error.message()
    for value, outcome in got.items():
        assert not isinstance(outcome, Exception), (value, outcome)
        y, batch = outcome
        assert y.tolist() == [[10 * value]]
        assert batch.tolist() == [[4]], "the requests were not batched together"


@pytest.mark.models("pb_raise")
def test_failure_counter_counts_failed_requests(triton, http_client):
    """nv_inference_request_failure grows by exactly the 3 requests that raised; success by the 2 ok."""
    failure0 = metric_total(triton, "nv_inference_request_failure", "pb_raise")
    success0 = metric_total(triton, "nv_inference_request_success", "pb_raise")
    for x in (-1, 5, -2, 6, -3):
        try:
            http_client.infer("pb_raise", {"X": np.array([x], dtype=np.int32)})
        except InferenceServerException:
            assert x < 0
    wait_until(lambda: metric_total(triton, "nv_inference_request_failure", "pb_raise") >= failure0 + 3
               and metric_total(triton, "nv_inference_request_success", "pb_raise") >= success0 + 2, 5,
               "the counters to count 3 failures and 2 successes")
    assert metric_total(triton, "nv_inference_request_failure", "pb_raise") == failure0 + 3
    assert metric_total(triton, "nv_inference_request_success", "pb_raise") == success0 + 2


@pytest.mark.models("pb_batch_errors")
def test_failure_counter_and_error_responses_in_a_batch(triton):
    """An error *response* inside a batch is a failed request for the client, and the metrics say so:
    failure +1, success +3."""
    failure0 = metric_total(triton, "nv_inference_request_failure", "pb_batch_errors")
    success0 = metric_total(triton, "nv_inference_request_success", "pb_batch_errors")
    got = _batch_of_four(triton, [7, 8, -9, 10])
    assert isinstance(got[-9], InferenceServerException)
    wait_until(lambda: metric_total(triton, "nv_inference_request_success", "pb_batch_errors")
               + metric_total(triton, "nv_inference_request_failure", "pb_batch_errors") >= success0 + failure0 + 4,
               5, "the counters to count the 4 requests")
    counted = (int(metric_total(triton, "nv_inference_request_failure", "pb_batch_errors") - failure0),
               int(metric_total(triton, "nv_inference_request_success", "pb_batch_errors") - success0))
    assert counted == (1, 3), f"(failure, success) grew by {counted}"


def test_finalize_error_is_reported(triton, loader, triton_log):
    """An exception in finalize: the unload still completes (no stub left) and the log has the error."""
    loader.require("pb_finalize_raises")
    loader.unload("pb_finalize_raises")
    wait_until(lambda: "pb_finalize_raises: cleanup failed, 3 handles leaked" in triton_log(), 10,
               "the finalize error in the server log")
    assert "RuntimeError" in triton_log()


def test_auto_complete_error_is_reported(triton_factory):
    """An exception in auto_complete_config fails the load, quickly, with the exception's message;
    no stub stays. On a server of its own: a load that never answered could not be undone."""
    import threading

    message = "ValueError: pb_autocomplete_raises: cannot work out the inputs of this model"
    with triton_factory() as server:
        outcome: dict = {}

        def load():
            client = server.http_client(network_timeout=60, connection_timeout=60)
            try:
                client.load_model("pb_autocomplete_raises")
                outcome["error"] = None
            except Exception as exc:  # noqa: BLE001 - the load's answer is the outcome
                outcome["error"] = exc
            finally:
                client.close()

        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        worker.join(CASE_TIMEOUT_S)
        if worker.is_alive():
            server.kill("the load of pb_autocomplete_raises never answered")
            pytest.fail(f"the load did not answer within {CASE_TIMEOUT_S:g} s (stuck in LOADING)")
        error = outcome["error"]
        assert isinstance(error, InferenceServerException), "the model loaded although auto-complete raised"
        assert message in error.message(), error.message()
        assert message in server.log_tail(200)
        assert not stubs(server, "pb_autocomplete_raises")
