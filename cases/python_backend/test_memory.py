"""Memory: tensors cross the server <-> stub shared memory bit-exactly, from a few bytes to 64 MiB;
the stub's pool grows from a small default and a request beyond a bounded pool fails with the
backend's message (the stub lives on); client-side system (and, on GPU cells, CUDA) shared memory.
"""

import os
import queue
import threading

import numpy as np
import pytest
from pb_helpers import bounded_client_for, is_running, shm_regions, stub_region, stubs
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.backend("python")

MIB = 1 << 20
RNG_SEED = 20241125


def _random_bits(dtype, count, rng):
    """Any bit pattern of the dtype (NaN payloads, -0.0, subnormals included): equality of the bits
    is the test, not equality of the values."""
    width = np.dtype(dtype).itemsize
    raw = rng.integers(0, 256, size=count * width, dtype=np.uint8)
    return raw.view(dtype)


def _bytes_elements(total, rng):
    """BYTES elements: unicode, empty, NUL bytes, and random binary; about ``total`` bytes in all."""
    fixed = ["grüße ✓ 日本語 🚀".encode(), b"", b"nul\x00inside", "ünïcødé".encode()]
    out, size = list(fixed), sum(len(f) for f in fixed)
    while size < total:
        n = int(rng.integers(0, 200))
        out.append(rng.integers(0, 256, size=n, dtype=np.uint8).tobytes())
        size += n
    return np.array(out, dtype=np.object_)


def make_tensor(dtype, nbytes, rng):
    if dtype == "BYTES":
        return _bytes_elements(nbytes, rng)
    if dtype == "BOOL":
        return rng.integers(0, 2, size=max(1, nbytes)).astype(np.bool_)
    np_dtype = {"FP32": np.float32, "FP16": np.float16, "INT8": np.int8}[dtype]
    return _random_bits(np_dtype, max(1, nbytes // np.dtype(np_dtype).itemsize), rng)


def assert_bit_exact(sent, got):
    assert got.shape == sent.shape and got.dtype == sent.dtype, (got.shape, got.dtype, sent.shape, sent.dtype)
    if sent.dtype == np.object_:
        assert [bytes(x) for x in got] == [bytes(x) for x in sent]
    else:
        assert got.tobytes() == sent.tobytes(), "the bits differ"


SIZES = {"3B": 3, "1MiB": MIB}


@pytest.mark.models("pb_identity")
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("dtype", ["FP32", "INT8", "BOOL", "BYTES", "FP16"])
def test_round_trip_bit_exact(client, dtype, size):
    """IN_<T> -> stub -> OUT_<T> returns exactly the bits that were sent."""
    rng = np.random.default_rng(RNG_SEED)
    sent = make_tensor(dtype, SIZES[size], rng)
    got = client.infer("pb_identity", {f"IN_{dtype}": sent}, outputs=[f"OUT_{dtype}"])[f"OUT_{dtype}"]
    assert_bit_exact(sent, got)


@pytest.mark.models("pb_identity")
def test_round_trip_64mib_fp32(client):
    """64 MiB of FP32 (random bit patterns) through the stub and back, bit-exactly."""
    sent = _random_bits(np.float32, 64 * MIB // 4, np.random.default_rng(RNG_SEED))
    got = client.infer("pb_identity", {"IN_FP32": sent}, outputs=["OUT_FP32"])["OUT_FP32"]
    assert_bit_exact(sent, got)


def _bf16_values():
    """float32 values whose low 16 bits are zero, i.e. exactly representable in bfloat16."""
    bits = np.array([0x3FC0, 0xC000, 0x0000, 0x8000, 0x7F80, 0xFF80, 0x0001, 0x7F7F, 0x4049], dtype=np.uint32)
    return (bits << 16).view(np.float32)


def _bf16_infer(client, values):
    tensor = client.module.InferInput("IN", list(values.shape), "BF16")
    tensor.set_data_from_numpy(values)
    result = client.raw.infer("pb_bf16", [tensor], outputs=[client.module.InferRequestedOutput("OUT")],
                              **client.bounded())
    return result.as_numpy("OUT")


@pytest.mark.min_triton("24.10")
@pytest.mark.models("pb_bf16")
def test_bf16_round_trip(client, bounded_client):
    """BF16 in and out through DLPack, bit-exactly (tritonclient carries BF16 as float32)."""
    sent = _bf16_values()
    got = _bf16_infer(bounded_client, sent)
    assert got.view(np.uint32).tolist() == sent.view(np.uint32).tolist()


@pytest.mark.max_triton("24.07")
def test_bf16_refused_before_support(client, triton_factory, loader):
    """Before BF16 support a BF16 request must fail with the backend's message, quickly, and the
    stub must live on. On a server of its own (a broken release leaves the request stuck)."""
    with triton_factory() as server:
        loader.on(server).require("pb_bf16")
        (stub,) = stubs(server, "pb_bf16")
        bounded = bounded_client_for(server, client.protocol)
        outcome: queue.Queue = queue.Queue()

        def send():
            try:
                outcome.put(_bf16_infer(bounded, _bf16_values()))
            except Exception as exc:  # noqa: BLE001 - the answer is the outcome
                outcome.put(exc)

        try:
            threading.Thread(target=send, daemon=True).start()
            try:
                answer = outcome.get(timeout=10)
            except queue.Empty:
                dead = "" if is_running(server, stub) else " (the model's stub died)"
                pytest.fail(f"no answer within 10 s to a BF16 request{dead}", pytrace=False)
            assert isinstance(answer, InferenceServerException), f"BF16 answered {answer}"
            assert "TYPE_BF16 not currently supported" in answer.message()
            assert is_running(server, stub), "the stub died on the BF16 request"
        finally:
            server.kill("the case is over")  # unloading a model with a request stuck in it would hang (a
            # killed server's models are not unloaded)
            bounded.close()


# -- the stub's pool -----------------------------------------------------------------------------------
def _pattern(n):
    return (np.arange(n, dtype=np.int64) % 251).astype(np.uint8)


def test_pool_grows_from_small_default(triton_factory, loader):
    """A server with shm-default-byte-size=2 MiB: the stub's region starts at 2 MiB and grows (in
    1 MiB steps) to carry an 8 MiB output, which arrives intact."""
    with triton_factory("--backend-config=python,shm-default-byte-size=2097152",
                        "--backend-config=python,shm-growth-byte-size=1048576") as server:
        spare = loader.on(server)
        spare.require("pb_pool")
        (proc,) = stubs(server, "pb_pool")
        region = stub_region(proc, server)
        assert shm_regions(server)[region] == 2 * MIB
        client = bounded_client_for(server, "http")
        try:
            out = client.infer("pb_pool", {"NBYTES": np.array([8 * MIB], dtype=np.int64)})["OUT"]
        finally:
            client.close()
        assert out.tobytes() == _pattern(8 * MIB).tobytes()
        grown = shm_regions(server)[region]
        assert grown > 8 * MIB and grown % MIB == 0, grown
        spare.close()


@pytest.mark.models("pb_pool_limited")
def test_request_beyond_the_pool_fails_cleanly(triton, client):
    """pb_pool_limited's stub may not grow its region past 8 MiB (a bounded pool, as a small /dev/shm
    makes it): a 16 MiB output fails with the backend's message, the stub survives and serves on."""
    (before,) = stubs(triton, "pb_pool_limited")
    small = client.infer("pb_pool_limited", {"NBYTES": np.array([1000], dtype=np.int64)})["OUT"]
    assert small.tobytes() == _pattern(1000).tobytes()
    with pytest.raises(InferenceServerException) as failed:
        client.infer("pb_pool_limited", {"NBYTES": np.array([16 * MIB], dtype=np.int64)})
    message = failed.value.message()
    assert "Failed to increase the shared memory pool size" in message, message
    assert "File too large" in message, message
    (after,) = stubs(triton, "pb_pool_limited")
    assert (after.pid, after.starttime) == (before.pid, before.starttime), "the stub was replaced"
    again = client.infer("pb_pool_limited", {"NBYTES": np.array([4 * MIB], dtype=np.int64)})["OUT"]
    assert again.tobytes() == _pattern(4 * MIB).tobytes()


# -- client-side shared memory ---------------------------------------------------------------------------
@pytest.mark.models("pb_identity")
def test_client_system_shared_memory(client, triton):
    """Inputs and outputs in system shared memory regions the client registered: exact result, and
    the regions are gone from the server after unregistering. The regions are made where the server
    runs (``triton.inside``: this machine's /dev/shm, or its container's, as a client beside it makes
    them), as shm_open + ftruncate do."""
    sent = _random_bits(np.float32, 4096, np.random.default_rng(RNG_SEED))
    nbytes = sent.nbytes
    tag = f"pb_{client.protocol}_{os.getpid()}"
    keys = {"in": f"/{tag}_in", "out": f"/{tag}_out"}
    inside = triton.inside
    registered = []
    try:
        inside.shm_write(keys["in"], sent.tobytes())
        inside.shm_write(keys["out"], np.full_like(sent, -1.0).tobytes())  # only the server overwrites it
        for name, key in keys.items():
            client.raw.register_system_shared_memory(f"{tag}_{name}", key, nbytes)
            registered.append(f"{tag}_{name}")
        tensor = client.module.InferInput("IN_FP32", list(sent.shape), "FP32")
        tensor.set_shared_memory(f"{tag}_in", nbytes)
        output = client.module.InferRequestedOutput("OUT_FP32")
        output.set_shared_memory(f"{tag}_out", nbytes)
        client.raw.infer("pb_identity", [tensor], outputs=[output], **client.bounded())
        assert inside.shm_read(keys["out"]) == sent.tobytes()
        status = client.raw.get_system_shared_memory_status()
        names = [r["name"] for r in status] if client.protocol == "http" else list(status.regions)
        assert {f"{tag}_in", f"{tag}_out"} <= set(names), names
    finally:
        for name in registered:
            client.raw.unregister_system_shared_memory(name)
        for key in keys.values():
            inside.shm_remove(key)
    status = client.raw.get_system_shared_memory_status()
    names = [r["name"] for r in status] if client.protocol == "http" else list(status.regions)
    assert not {f"{tag}_in", f"{tag}_out"} & set(names), names
    assert not [k for k in keys.values() if inside.shm_read(k) is not None]


@pytest.mark.instance_kind("gpu")
@pytest.mark.models("pb_identity")
def test_client_cuda_shared_memory(client):
    """Inputs and outputs in CUDA shared memory regions on GPU 0: exact result, then unregistered."""
    try:
        import tritonclient.utils.cuda_shared_memory as cudashm
    except Exception as exc:  # noqa: BLE001 - tritonclient needs the cuda-python package for this
        # A gpu cell has what this case needs; a venv that cannot use it is an error, not a skip.
        pytest.fail(f"tritonclient's CUDA shared memory cannot be used in this cell venv: {exc}", pytrace=False)
    sent = _random_bits(np.float32, 4096, np.random.default_rng(RNG_SEED))
    nbytes = sent.nbytes
    tag = f"pb_cuda_{client.protocol}_{os.getpid()}"
    handles = {}
    try:
        for name in ("in", "out"):
            handles[name] = cudashm.create_shared_memory_region(f"{tag}_{name}", nbytes, 0)
            client.raw.register_cuda_shared_memory(f"{tag}_{name}", cudashm.get_raw_handle(handles[name]), 0, nbytes)
        cudashm.set_shared_memory_region(handles["in"], [sent])
        tensor = client.module.InferInput("IN_FP32", list(sent.shape), "FP32")
        tensor.set_shared_memory(f"{tag}_in", nbytes)
        output = client.module.InferRequestedOutput("OUT_FP32")
        output.set_shared_memory(f"{tag}_out", nbytes)
        client.raw.infer("pb_identity", [tensor], outputs=[output], **client.bounded())
        got = cudashm.get_contents_as_numpy(handles["out"], np.float32, list(sent.shape))
        assert got.tobytes() == sent.tobytes()
    finally:
        for name in handles:
            client.raw.unregister_cuda_shared_memory(f"{tag}_{name}")
        for handle in handles.values():
            cudashm.destroy_shared_memory_region(handle)
