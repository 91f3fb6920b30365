"""The cbidentity C backend serves exactly over HTTP and gRPC, gets its inputs where it asked for
them, and its errors become the clients' error responses."""

from __future__ import annotations

import re
import uuid

import numpy as np
import pytest
from cb_support import MEMORY_CPU, info
from tritonclient.utils import InferenceServerException

pytestmark = [pytest.mark.backend("custom"), pytest.mark.models("cb_identity")]

GRPC_STATUS = {"INVALID_ARG": "StatusCode.INVALID_ARGUMENT", "INTERNAL": "StatusCode.INTERNAL"}


def fp32_edge_cases() -> np.ndarray:
    """FP32 values a conversion would not keep: -0.0, infinities, a denormal, a NaN with payload."""
    a = np.array([[1.5, -0.0, np.inf, -np.inf],
                  [1e-45, -3.25, 65504.0, 3.4028235e38],
                  [0.0, 1.0, 2.0, 0.0]], dtype=np.float32)
    a.view(np.uint32)[2, 3] = 0x7FC00123  # quiet NaN with a payload
    return a


def bytes_edge_cases() -> np.ndarray:
    row = [b"", b"x", b"\x00\xff\xfe", "ünï".encode()]
    return np.array([row, row[::-1], row[1:] + row[:1]], dtype=np.object_)


def test_identity_is_byte_exact(client):
    """OUTPUTn must be INPUTn bit for bit, FP32 and BYTES, for a batch of 3 rows in one request."""
    a, b = fp32_edge_cases(), bytes_edge_cases()
    out = client.infer("cb_identity", {"INPUT0": a, "INPUT1": b})
    assert out["OUTPUT0"].dtype == np.float32 and out["OUTPUT0"].shape == a.shape
    np.testing.assert_array_equal(out["OUTPUT0"].view(np.uint32), a.view(np.uint32))
    assert out["OUTPUT1"].shape == b.shape
    assert out["OUTPUT1"].tolist() == b.tolist()
    # No dynamic batcher: the request is one execute call of its own, its 3 rows are the batch.
    assert out["INFO"].shape == (3, 8)
    assert {info(row)["requests"] for row in out["INFO"]} == {1}
    assert {info(row)["call_rows"] for row in out["INFO"]} == {3}


def test_inputs_arrive_in_the_memory_type_asked_for(client):
    """The backend asks TRITONBACKEND_InputBuffer/OutputBuffer for CPU memory and must get CPU memory."""
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    b = np.array([[b"a"] * 4] * 2, dtype=np.object_)
    out = client.infer("cb_identity", {"INPUT0": a, "INPUT1": b})
    for row in out["INFO"]:
        got = info(row)
        assert got["input_memory"] == MEMORY_CPU, got
        assert got["info_memory"] == MEMORY_CPU, got
        assert got["input_buffers"] == 1, got  # one contiguous tensor from the wire
    np.testing.assert_array_equal(out["OUTPUT0"], a)


def test_system_shared_memory_reaches_the_backend_as_cpu_memory(client, triton):
    """An input in the client's system shared memory reaches the backend as CPU memory, exactly, and
    the output the backend writes lands in the client's output region. The regions are made where the
    server runs (``triton.inside``: this machine's /dev/shm, or its container's)."""
    a = fp32_edge_cases()
    b = bytes_edge_cases()
    size = a.nbytes
    key = f"cb_{uuid.uuid4().hex[:12]}"
    regions = {name: f"/{key}_{name}" for name in ("in", "out")}
    inside = triton.inside
    registered = []
    try:
        inside.shm_write(regions["in"], a.tobytes())
        inside.shm_write(regions["out"], bytes(size))
        for name, region in regions.items():
            client.raw.register_system_shared_memory(f"{key}_{name}", region, size)
            registered.append(f"{key}_{name}")
        m = client.module
        in0 = m.InferInput("INPUT0", list(a.shape), "FP32")
        in0.set_shared_memory(f"{key}_in", size)
        in1 = m.InferInput("INPUT1", list(b.shape), "BYTES")
        in1.set_data_from_numpy(b)
        out0 = m.InferRequestedOutput("OUTPUT0")
        out0.set_shared_memory(f"{key}_out", size)
        result = client.raw.infer("cb_identity", [in0, in1], outputs=[out0, m.InferRequestedOutput("INFO")],
                                  **client.bounded())
        written = np.frombuffer(inside.shm_read(regions["out"]), np.float32).reshape(a.shape)
        np.testing.assert_array_equal(written.view(np.uint32), a.view(np.uint32))
        got = info(result.as_numpy("INFO")[0])
        assert got["input_memory"] == MEMORY_CPU, got
        assert got["input_buffers"] == 1, got
    finally:
        for name in registered:
            client.raw.unregister_system_shared_memory(name)
        for region in regions.values():
            inside.shm_remove(region)


def _failing_inputs() -> dict[str, np.ndarray]:
    return {"INPUT0": np.ones((1, 2), np.float32), "INPUT1": np.array([[b"a", b"b"]], dtype=np.object_)}


def _status(client, code: str) -> str:
    """The status of an error of this code: INVALID_ARG is 400 / INVALID_ARGUMENT, INTERNAL 500 / INTERNAL
    (releases that answer otherwise are declared in cases/known_issues.toml)."""
    if client.protocol == "grpc":
        return GRPC_STATUS[code]
    return "400" if code == "INVALID_ARG" else "500"


def test_error_response_from_execute_reaches_the_client(client):
    """A request the backend answers with an error response fails with the backend's message and
    code; the instance goes on serving the next request."""
    with pytest.raises(InferenceServerException) as raised:
        client.infer("cb_identity", _failing_inputs(), parameters={"cb_fail": "respond"})
    assert re.fullmatch(r"cbidentity: request 1 of 1 on cb_identity_0_\d+ failed as asked \(cb_fail=respond\)",
                        raised.value.message()), raised.value.message()
    assert raised.value.status() == _status(client, "INVALID_ARG")
    out = client.infer("cb_identity", _failing_inputs())
    np.testing.assert_array_equal(out["OUTPUT0"], _failing_inputs()["INPUT0"])


def test_error_returned_by_execute_becomes_an_error_response(client):
    """ModelInstanceExecute returning an error (requests untouched) must still answer the client,
    with that error's message and code (INTERNAL: HTTP 500)."""
    with pytest.raises(InferenceServerException) as raised:
        client.infer("cb_identity", _failing_inputs(), parameters={"cb_fail": "execute"})
    assert re.fullmatch(r"cbidentity: execute on cb_identity_0_\d+ failed as asked \(cb_fail=execute\)",
                        raised.value.message()), raised.value.message()
    assert raised.value.status() == _status(client, "INTERNAL")
    out = client.infer("cb_identity", _failing_inputs())
    np.testing.assert_array_equal(out["OUTPUT0"], _failing_inputs()["INPUT0"])
