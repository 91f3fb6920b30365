"""The backend-level half of the contract, on servers of their own: TRITONBACKEND_Initialize and
TRITONBACKEND_Finalize pair up once per server (Finalize at shutdown, not at model unload), and a
backend that refuses the server's API version is refused with its message."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tritonclient.http as httpclient
from cb_support import API_VERSIONS, ends_with, events, model_config, names, new_tag, wait_for_events

pytestmark = pytest.mark.backend("custom")

MODEL = "cb_lifecycle"


def test_backend_finalize_runs_once_at_shutdown_not_at_unload(triton_factory, kind):
    """One server: the backend is initialized once before its first model, survives that model's
    unload and a second model, and is finalized once, last, when the server stops."""
    backend, first, second = new_tag(), new_tag(), new_tag()
    tags = (backend, first, second)
    with triton_factory(f"--backend-config=cbidentity,event_tag={backend}") as server:
        offset = server.log_offset()

        def log() -> str:
            return server.log_since(offset)

        assert server.load(MODEL, config=model_config(MODEL, kind=kind, groups=(2,), tag=first)).error is None
        client = server.http_client()
        try:
            tensor = httpclient.InferInput("INPUT0", [2], "FP32")
            tensor.set_data_from_numpy(np.ones(2, np.float32))
            client.infer(MODEL, [tensor])
        finally:
            client.close()
        server.unload(MODEL)
        wait_for_events(log, tags, ends_with("model_finalize"), "ModelFinalize after unload")
        assert server.load(MODEL, config=model_config(MODEL, kind=kind, groups=(1,), tag=second)).error is None
        running = events(log(), *tags)
    final = events(log(), *tags)

    assert names(running) == [
        "backend_initialize",
        "model_initialize", "instance_initialize", "instance_initialize", "execute",
        "instance_finalize", "instance_finalize", "model_finalize",
        "model_initialize", "instance_initialize",
    ], running
    assert final[:len(running)] == running
    # Stopping the server unloads the model still loaded, then finalizes the backend.
    assert names(final[len(running):]) == ["instance_finalize", "model_finalize", "backend_finalize"], final
    assert running[0].fields["calls"] == "1" and final[-1].fields["calls"] == "1"
    second_init = running[-2]
    assert second_init.tag == second
    assert (second_init.fields["backend_initialize"], second_init.fields["backend_finalize"]) == ("1", "0")


def test_incompatible_api_version_is_refused(triton, cell, loader):
    """A backend built for TRITONBACKEND API 1.99 refuses this server at Initialize: the load fails
    with the server's 'Unsupported' and the backend's message naming both versions."""
    result = loader.load("cb_apinext")
    assert result.error is not None, "a model of a backend that refused the API version loaded"
    major, minor = API_VERSIONS.get(cell.triton, (None, None))
    provided = re.escape(f"{major}.{minor}") if major is not None else r"1\.\d+"
    expected = (r"load failed for model 'cb_apinext': version 1 is at UNAVAILABLE state: Unsupported: "
                rf"cbapinext was built for TRITONBACKEND API 1\.99; this server provides {provided}")
    assert re.match(expected, result.error), result.error
    assert "failed to load 'cb_apinext'" in result.log
    client = triton.http_client()
    try:
        assert not client.is_model_ready("cb_apinext")
    finally:
        client.close()


def test_refused_backend_is_finalized_and_retried(triton_factory):
    """Each load of a refused backend's model calls Initialize again, and Finalize follows every
    refused Initialize at once (not at shutdown)."""
    backend = new_tag()
    with triton_factory(f"--backend-config=cbapinext,event_tag={backend}") as server:
        offset = server.log_offset()

        def log() -> str:
            return server.log_since(offset)

        for attempt in (1, 2):
            assert server.load("cb_apinext").error is not None
            found = wait_for_events(log, (backend,), lambda f, n=attempt: len(f) >= 2 * n,
                                    f"Finalize after refused Initialize #{attempt}")
            assert [(e.name, e.flags) for e in found] == [
                ("backend_initialize", ("refused",)), ("backend_finalize", ())] * attempt, found
    assert len(events(log(), backend)) == 4, "a refused backend was called again at shutdown"
