"""Process lifecycle of the python backend: one stub process per model instance, initialize and
finalize really run, unloading leaves no process and no shared-memory region, a killed stub fails
requests quickly and comes back on reload, and a broken initialize fails the load with its message.

Processes are the server's children where it runs (``triton.inside``: this machine, or its container).
"""

import queue
import signal
import threading

import numpy as np
import pytest
from pb_helpers import (
    bounded_client_for,
    is_running,
    kill,
    model_state,
    shm_regions,
    stub_region,
    stubs,
    wait_until,
    zombie_children,
)
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.backend("python")

MODEL = "pb_lifecycle"
ONE = {"IN": np.array([1], dtype=np.int64)}

# How long a request to a model whose stub was killed may take to fail (the contract: fast, with a
# clear error; never a hang). What releases really do is declared in cases/known_issues.toml.
FAIL_FAST_S = 10
DEAD_STUB = f"Stub process '{MODEL}_0_0' is not healthy"


def lifecycle_config(cell, count):
    """pb_lifecycle's config with ``count`` instances, for a load with a config override."""
    return {
        "name": MODEL,
        "backend": "python",
        "max_batch_size": 0,
        "input": [{"name": "IN", "data_type": "TYPE_INT64", "dims": [1]}],
        "output": [{"name": "PID", "data_type": "TYPE_INT64", "dims": [1]},
                   {"name": "INIT_TOKEN", "data_type": "TYPE_STRING", "dims": [1]}],
        "instance_group": [{"kind": "KIND_GPU" if cell.instance_kind == "gpu" else "KIND_CPU", "count": count}],
    }


def load_lifecycle(loader, cell, count=1):
    result = loader.load(MODEL, config=lifecycle_config(cell, count))
    assert result.error is None, result.error
    return result


@pytest.mark.parametrize("count", [1, 2, 3])
def test_one_stub_process_per_instance(triton, loader, cell, http_client, count):
    """instance_group count N gives exactly N stub processes, one per instance, each with its region."""
    load_lifecycle(loader, cell, count)
    procs = stubs(triton, MODEL)
    assert len(procs) == count, [p.argv for p in procs]
    assert sorted(p.instance for p in procs) == [f"{MODEL}_0_{i}" for i in range(count)]
    regions = shm_regions(triton)
    for proc in procs:
        assert stub_region(proc, triton) in regions, (proc.argv, regions)
    pid = int(http_client.infer(MODEL, ONE)["PID"][0])
    assert pid in {p.pid for p in procs}


def test_initialize_and_finalize_run_in_the_stub(triton, loader, cell, http_client, triton_log):
    """initialize runs in each stub before it serves; finalize runs in that same process at unload."""
    result = load_lifecycle(loader, cell, 2)
    procs = stubs(triton, MODEL)
    for proc in procs:
        assert f"PB_LIFECYCLE initialize instance={proc.instance} pid={proc.pid}" in result.log, result.log
    out = http_client.infer(MODEL, ONE)
    pid = int(out["PID"][0])
    served_by = next(p for p in procs if p.pid == pid)
    assert out["INIT_TOKEN"][0].decode() == f"init:{served_by.instance}:{pid}"
    loader.unload(MODEL)
    log = triton_log()
    for proc in procs:
        assert f"PB_LIFECYCLE finalize instance={proc.instance} pid={proc.pid}" in log, log[-3000:]


def test_unload_removes_stubs_and_regions(triton, loader, cell):
    """Unloading ends every stub of the model (reaped, no zombie) and removes their regions."""
    zombies = {p.pid for p in zombie_children(triton)}  # earlier cases' (not this one's to judge)
    load_lifecycle(loader, cell, 2)
    procs = stubs(triton, MODEL)
    regions = {stub_region(p, triton) for p in procs}
    assert len(procs) == 2 and None not in regions
    assert regions <= set(shm_regions(triton))
    loader.unload(MODEL)
    assert not [p for p in procs if is_running(triton, p)]
    wait_until(lambda: not regions & set(shm_regions(triton)), 10, "the unloaded stubs' regions to go")
    wait_until(lambda: not {p.pid for p in zombie_children(triton)} - zombies, 10, "the server to reap its stubs")


def test_five_load_unload_rounds_leak_nothing(triton, loader, cell):
    """Five load/unload rounds: a fresh stub each time, and afterwards no zombie and no new region."""
    before = set(shm_regions(triton))
    zombies = {p.pid for p in zombie_children(triton)}  # earlier cases' (not this one's to judge)
    pids = []
    for _ in range(5):
        load_lifecycle(loader, cell, 1)
        procs = stubs(triton, MODEL)
        assert len(procs) == 1
        pids.append(procs[0].pid)
        loader.unload(MODEL)
    assert len(set(pids)) == 5, pids
    wait_until(lambda: not {p.pid for p in zombie_children(triton)} - zombies, 10, "no new zombie child of the server")
    wait_until(lambda: set(shm_regions(triton)) <= before, 10,
               f"no region left by the rounds (now {sorted(set(shm_regions(triton)) - before)})")


@pytest.fixture
def own_server(triton_factory, loader):
    """A server of its own for the cases that kill processes, so the cell's server stays clean.

    It is SIGKILLed at the end: a server with a dead stub can take the whole stub timeout to unload
    or stop, and killing the process group leaves nothing behind either.
    """
    with triton_factory() as server:
        yield server, loader.on(server)
        server.kill("the case is over")


def _outcome(client, model, arrays):
    try:
        return client.infer(model, arrays)
    except Exception as exc:  # noqa: BLE001 - the outcome is what the request got
        return exc


def _kill_stub(server):
    (proc,) = stubs(server, MODEL)
    kill(server, proc, signal.SIGKILL)
    wait_until(lambda: not is_running(server, proc), 10, "the killed stub to die")
    return proc


def test_stub_sigkill_readiness(own_server, cell):
    """After SIGKILL of its only stub the model is not ready (HTTP and gRPC): readiness says whether
    the model can serve, and a model without its stub cannot."""
    server, loader = own_server
    load_lifecycle(loader, cell, 1)
    http, grpc = bounded_client_for(server, "http"), bounded_client_for(server, "grpc")
    try:
        assert http.is_model_ready(MODEL) and grpc.is_model_ready(MODEL)
        _kill_stub(server)
        ready = (http.is_model_ready(MODEL), grpc.is_model_ready(MODEL))
    finally:
        http.close()
        grpc.close()
    assert ready == (False, False), f"model with a dead stub reported ready (http, grpc) = {ready}"


def _answer_within(server, protocol, seconds, what):
    """The request's outcome (an output or the exception it raised); a request that gets no answer
    within ``seconds`` fails the case as a hang (the request is left to die with its server). Each
    request has a client of its own thread (tritonclient's HTTP client stays on its thread)."""
    answers: queue.Queue = queue.Queue()

    def send():
        bounded = bounded_client_for(server, protocol)
        try:
            answers.put(_outcome(bounded, MODEL, ONE))
        finally:
            bounded.close()

    threading.Thread(target=send, daemon=True).start()
    try:
        return answers.get(timeout=seconds)
    except queue.Empty:
        pytest.fail(f"no answer within {seconds} s to {what}", pytrace=False)


def test_stub_sigkill_requests_fail_fast(own_server, cell, client):
    """Requests to a model whose stub was SIGKILLed fail quickly with a clear error, never hang.

    After that first failure the backend may restart the stub (a later request is served by a new
    process whose initialize ran) or keep failing until a reload; either way each request answers
    within FAIL_FAST_S, and a failure names the dead stub.
    """
    server, loader = own_server
    load_lifecycle(loader, cell, 1)
    killed = _kill_stub(server)
    first = _answer_within(server, client.protocol, FAIL_FAST_S, "a request to a model whose stub was SIGKILLed")
    assert isinstance(first, InferenceServerException), f"the dead stub answered {first!r}"
    assert DEAD_STUB in first.message(), first.message()
    for _ in range(2):
        later = _answer_within(server, client.protocol, FAIL_FAST_S, "a request after the dead stub's failure")
        if isinstance(later, InferenceServerException):
            assert DEAD_STUB in later.message(), later.message()
            continue
        assert not isinstance(later, Exception), later
        pid = int(later["PID"][0])
        assert pid != killed.pid, "served by the killed stub's pid"
        assert later["INIT_TOKEN"][0].decode() == f"init:{MODEL}_0_0:{pid}"


def test_stub_sigkill_then_reload_serves(own_server, cell):
    """Unload + load of a model whose stub was killed: the server stays up, a fresh stub serves and
    the dead one is reaped."""
    server, loader = own_server
    load_lifecycle(loader, cell, 1)
    killed = _kill_stub(server)
    try:
        loader.unload(MODEL)
        result = loader.load(MODEL, config=lifecycle_config(cell, 1))
    except Exception as exc:
        _fail_if_server_ended(server, f"unload + load of the model: {exc}")
        raise
    if result.error is not None:
        _fail_if_server_ended(server, f"the reload failed: {result.error}")
    assert result.error is None, result.error
    bounded = bounded_client_for(server, "http")
    try:
        out = bounded.infer(MODEL, ONE)
    finally:
        bounded.close()
    pid = int(out["PID"][0])
    assert pid != killed.pid
    assert pid in {p.pid for p in stubs(server, MODEL)}
    wait_until(lambda: killed.pid not in {p.pid for p in zombie_children(server)}, 10,
               "the killed stub to be reaped")


def _fail_if_server_ended(server, what):
    """A server that ended (or ends within 5 s) is the failure, not the exception it caused."""
    try:
        ended = wait_until(server.exit_status, 5, "the server to end")
    except AssertionError:
        return
    pytest.fail(f"the server ended ({ended}) during {what}", pytrace=False)


def test_initialize_exception_fails_the_load(triton, loader, http_client):
    """An exception in initialize fails the load with the model's own message; no stub stays."""
    result = loader.load("pb_init_raises")
    assert result.error is not None, "the model loaded although initialize raised"
    assert "RuntimeError: pb_init_raises: refusing to start, the weights file is missing" in result.error
    assert model_state(http_client.raw, "pb_init_raises") == "UNAVAILABLE"
    wait_until(lambda: not stubs(triton, "pb_init_raises"), 10, "the failed stub to exit")


def test_initialize_exit_fails_the_load(triton, loader, http_client):
    """sys.exit in initialize fails the load with the stub's message (SystemExit and its text)."""
    result = loader.load("pb_init_exits")
    assert result.error is not None, "the model loaded although initialize exited"
    assert "SystemExit: pb_init_exits: exiting from initialize on purpose" in result.error
    assert model_state(http_client.raw, "pb_init_exits") == "UNAVAILABLE"
    wait_until(lambda: not stubs(triton, "pb_init_exits"), 10, "the exited stub to be gone")


def test_server_sigkill_leaves_no_stub(triton_factory, loader, cell):
    """SIGKILL of the server itself: its stubs notice and exit within 10 s (a server of its own)."""
    with triton_factory() as server:
        result = loader.on(server).load(MODEL, config=lifecycle_config(cell, 2))
        assert result.error is None, result.error
        procs = stubs(server, MODEL)
        assert len(procs) == 2
        server.inside.kill_server()
        # Reap it at once, as any supervisor would: a stub takes an unreaped (zombie) server for alive.
        wait_until(server.exit_status, 5, "the killed server to be reaped")
        wait_until(lambda: not [p for p in procs if is_running(server, p)], 10,
                   "the stubs of the killed server to exit")
