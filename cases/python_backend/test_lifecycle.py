"""Process lifecycle of the python backend: one stub process per model instance, initialize and
finalize really run, unloading leaves no process and no shared-memory region, a killed stub fails
requests quickly and comes back on reload, and a broken initialize fails the load with its message.

Processes are read from /proc (children of the server), so these cases need the local runner.
"""

import os
import queue
import signal
import threading
import time

import numpy as np
import pytest
from pb_helpers import (
    LOCAL,
    bounded_client_for,
    is_running,
    model_state,
    shm_regions,
    stub_region,
    stubs,
    wait_until,
    zombie_children,
)
from tritonclient.utils import InferenceServerException

pytestmark = [pytest.mark.backend("python"), LOCAL]

MODEL = "pb_lifecycle"
ONE = {"IN": np.array([1], dtype=np.int64)}

# After SIGKILL of a stub, every release seen so far keeps reporting the model READY (strict
# readiness does not follow stub health); the issue wants NOT ready, which later releases are held to.
KEEPS_READY_AFTER_STUB_KILL = {"23.10", "23.12", "24.03", "24.07", "24.10"}
# Up to 24.03 the backend restarts a dead stub on the next request (which fails) and later requests
# succeed again; in 24.10 every request fails until the model is reloaded. 24.07 is worse: a request
# to the dead stub never answers, and unloading the model aborts the whole server (SIGABRT in
# TRITONBACKEND_ModelInstanceFinalize).
RESTARTS_DEAD_STUB = {"23.10", "23.12", "24.03"}
HANGS_AND_ABORTS_AFTER_STUB_KILL = {"24.07"}


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
    assert not [p for p in procs if is_running(p)]
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
def own_server(triton_factory, private_loader):
    """A server of its own for the cases that kill processes, so the cell's server stays clean.

    It is SIGKILLed at the end: a server with a dead stub can take the whole stub timeout to unload
    or stop, and killing the process group leaves nothing behind either.
    """
    with triton_factory() as server:
        yield server, private_loader(server)
        server.kill("the case is over")


def _outcome(client, model, arrays):
    try:
        return client.infer(model, arrays)
    except Exception as exc:  # noqa: BLE001 - the outcome is what the request got
        return exc


def _kill_stub(server):
    (proc,) = stubs(server, MODEL)
    os.kill(proc.pid, signal.SIGKILL)
    wait_until(lambda: not is_running(proc), 10, "the killed stub to die")
    return proc


def test_stub_sigkill_readiness(own_server, cell, release):
    """After SIGKILL of its only stub the model should not be ready (HTTP and gRPC).

    Per release: every release seen so far still says READY (a gap the report must show).
    """
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
    if release.name in KEEPS_READY_AFTER_STUB_KILL:
        assert ready == (True, True), f"{release.name} used to keep the model READY; now {ready}"
    else:
        assert ready == (False, False), f"model with a dead stub reported ready (http, grpc) = {ready}"


def test_stub_sigkill_requests_fail_fast(own_server, cell, release, client):
    """Requests to a model whose stub was SIGKILLed fail quickly with a clear error, never hang.

    Per release: up to 24.03 the backend restarts the stub after that failure (initialize runs again
    in a new process and later requests succeed); 24.10 fails every request until a reload; 24.07
    never answers the request (held to that: no answer within 3 s).
    """
    server, loader = own_server
    load_lifecycle(loader, cell, 1)
    killed = _kill_stub(server)
    bounded = bounded_client_for(server, client.protocol)
    if release.name in HANGS_AND_ABORTS_AFTER_STUB_KILL:
        answers: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: answers.put(_outcome(bounded, MODEL, ONE)), daemon=True).start()
        with pytest.raises(queue.Empty):
            answer = answers.get(timeout=3)
            pytest.fail(f"{release.name} used to leave this request unanswered; it got {answer!r}")
        return  # own_server kills the server; the request dies with it
    try:
        started = time.monotonic()
        with pytest.raises(InferenceServerException) as failed:
            bounded.infer(MODEL, ONE)
        assert time.monotonic() - started < 10
        assert f"Stub process '{MODEL}_0_0' is not healthy" in failed.value.message()
        if release.name in RESTARTS_DEAD_STUB:
            out = bounded.infer(MODEL, ONE)
            pid = int(out["PID"][0])
            assert pid != killed.pid
            assert out["INIT_TOKEN"][0].decode() == f"init:{MODEL}_0_0:{pid}"
        else:
            for _ in range(2):
                started = time.monotonic()
                with pytest.raises(InferenceServerException) as again:
                    bounded.infer(MODEL, ONE)
                assert time.monotonic() - started < 10
                assert f"Stub process '{MODEL}_0_0' is not healthy" in again.value.message()
    finally:
        bounded.close()


def test_stub_sigkill_then_reload_serves(own_server, cell, release):
    """Unload + load of a model whose stub was killed: a fresh stub serves; the dead one is reaped.

    Per release: on 24.07 the unload aborts the server (held to that: it dies by SIGABRT).
    """
    server, loader = own_server
    load_lifecycle(loader, cell, 1)
    killed = _kill_stub(server)
    if release.name in HANGS_AND_ABORTS_AFTER_STUB_KILL:
        server.unload(MODEL)
        ended = wait_until(server.exit_status, 10, "the server to abort on the unload")
        assert ended == "killed by SIGABRT", ended
        loader.loaded.clear()
        return
    loader.unload(MODEL)
    load_lifecycle(loader, cell, 1)
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


def test_server_sigkill_leaves_no_stub(triton_factory, private_loader, cell):
    """SIGKILL of the server itself: its stubs notice and exit within 10 s (a server of its own)."""
    with triton_factory() as server:
        loader = private_loader(server)
        result = loader.load(MODEL, config=lifecycle_config(cell, 2))
        assert result.error is None, result.error
        procs = stubs(server, MODEL)
        assert len(procs) == 2
        loader.loaded.clear()  # nothing to unload: the server is about to die
        os.kill(server.pid, signal.SIGKILL)
        # Reap it at once, as any supervisor would: a stub takes an unreaped (zombie) server for alive.
        wait_until(server.exit_status, 5, "the killed server to be reaped")
        wait_until(lambda: not [p for p in procs if is_running(p)], 10,
                   "the stubs of the killed server to exit")
