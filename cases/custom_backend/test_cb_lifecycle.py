"""The TRITONBACKEND lifecycle contract, seen from the cbidentity backend: every entry point is
called in order and exactly as often as the config says (instances = sum of the groups' counts),
unload runs the finalizers, and refused initializations are cleaned up."""

from __future__ import annotations

import numpy as np
import pytest
from cb_support import (
    API_VERSIONS,
    brief,
    ends_with,
    events,
    model_config,
    names,
    new_tag,
    stats_when,
    wait_for_events,
)
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.backend("custom")

MODEL = "cb_lifecycle"


def instance_names(groups: tuple[int, ...]) -> set[str]:
    """Triton names instance i of group g '<model>_<g>_<i>'."""
    return {f"{MODEL}_{g}_{i}" for g, count in enumerate(groups) for i in range(count)}


def kind_word(kind: str) -> str:
    return kind.removeprefix("KIND_")


@pytest.mark.parametrize("groups", [(1,), (3,), (2, 1)], ids=["1x1", "1x3", "2+1"])
def test_lifecycle_calls_in_order_and_counted(triton, triton_log, http_client, loader, kind, groups):
    """Load -> ModelInitialize once, ModelInstanceInitialize once per instance, Execute once per
    request; unload -> each instance's Finalize once, ModelFinalize once and last."""
    tag = new_tag()
    loader.require(MODEL, config=model_config(MODEL, kind=kind, groups=groups, tag=tag))
    requests = 5
    for i in range(requests):
        x = np.full(3, i, np.float32)
        np.testing.assert_array_equal(http_client.infer(MODEL, {"INPUT0": x})["OUTPUT0"], x)
    loader.unload(MODEL)
    found = wait_for_events(triton_log, (tag,), ends_with("model_finalize"), "ModelFinalize after unload")

    count = sum(groups)
    assert names(found) == (["model_initialize"] + ["instance_initialize"] * count + ["execute"] * requests
                            + ["instance_finalize"] * count + ["model_finalize"]), found
    init = [e for e in found if e.name == "instance_initialize"]
    fini = [e for e in found if e.name == "instance_finalize"]
    assert {e.fields["instance"] for e in init} == instance_names(groups)
    assert {e.fields["instance"] for e in fini} == instance_names(groups)
    assert [int(e.fields["ordinal"]) for e in init] == list(range(count))
    assert {e.fields["kind"] for e in init} == {kind_word(kind)}
    assert all(e.fields["requests"] == "1" and e.fields["batch"] == "1" for e in found if e.name == "execute")
    assert sum(int(e.fields["executes"]) for e in fini) == requests
    assert found[-1].fields["instances"] == str(count)
    # The backend was initialized once for this server, before any model, and not finalized since.
    assert found[0].fields["backend_initialize"] == "1" and found[0].fields["backend_finalize"] == "0"


def test_unload_calls_each_finalizer_once(triton, triton_log, http_client, loader, kind):
    """Nothing is finalized while the model is loaded; unload finalizes each instance and the model
    once, and the model is no longer served."""
    tag = new_tag()
    loader.require(MODEL, config=model_config(MODEL, kind=kind, groups=(2,), tag=tag))
    http_client.infer(MODEL, {"INPUT0": np.ones(2, np.float32)})
    before = events(triton_log(), tag)
    assert names(before) == ["model_initialize", "instance_initialize", "instance_initialize", "execute"], before
    loader.unload(MODEL)
    found = wait_for_events(triton_log, (tag,), ends_with("model_finalize"), "ModelFinalize after unload")
    after = found[len(before):]
    assert names(after) == ["instance_finalize", "instance_finalize", "model_finalize"], after
    assert {e.fields["instance"] for e in after[:2]} == instance_names((2,))
    assert not http_client.is_model_ready(MODEL)
    with pytest.raises(InferenceServerException, match=f"unknown model: '{MODEL}'"):
        http_client.infer(MODEL, {"INPUT0": np.ones(2, np.float32)})


def test_refused_model_initialize_fails_the_load(triton, triton_log, kind):
    """A ModelInitialize error fails the load with its message; no instance is created, and
    ModelFinalize is still called once (with no model state), as for a refused backend."""
    tag = new_tag()
    result = triton.load(MODEL, config=model_config(MODEL, kind=kind, groups=(2,), tag=tag,
                                                    parameters={"fail_model_initialize": "yes"}))
    assert result.error is not None, "the model loaded although ModelInitialize returned an error"
    assert "Invalid argument: cbidentity: model cb_lifecycle refused by parameter fail_model_initialize" \
        in result.error, result.error
    backend_tag = "cbidentity"  # a model without state has no tag of its own: its finalize is the backend's
    found = wait_for_events(triton_log, (tag, backend_tag),
                            lambda f: any(e.name == "model_finalize" and e.fields.get("model") == MODEL for e in f),
                            "ModelFinalize after the refused ModelInitialize")
    mine = [e for e in found if e.tag == tag or e.fields.get("model") == MODEL]
    assert [(e.name, e.flags) for e in mine] == [("model_initialize", ("refused",)), ("model_finalize", ())], mine
    assert mine[1].fields["state"] == "none"


def test_refused_instance_initialize_is_finalized_with_the_others(triton, triton_log, kind):
    """One refused instance (ordinal 1 of 3) fails the load. Its Finalize follows at once (without
    state), the next instance is still created, then each initialized instance and the model are
    finalized once."""
    tag = new_tag()
    result = triton.load(MODEL, config=model_config(MODEL, kind=kind, groups=(3,), tag=tag,
                                                    parameters={"fail_instance": "1"}))
    assert result.error is not None, "the model loaded although an instance refused to initialize"
    assert "cbidentity: instance cb_lifecycle_0_1 (ordinal 1) refused by parameter fail_instance" in result.error
    found = wait_for_events(triton_log, (tag,), ends_with("model_finalize"),
                            "ModelFinalize after the refused instance")
    assert [brief(e) for e in found] == [
        "model_initialize",
        "instance_initialize cb_lifecycle_0_0",
        "instance_initialize cb_lifecycle_0_1 refused",
        "instance_finalize cb_lifecycle_0_1 state=none",
        "instance_initialize cb_lifecycle_0_2",
        "instance_finalize cb_lifecycle_0_0",
        "instance_finalize cb_lifecycle_0_2",
        "model_finalize",
    ], found


def test_statistics_count_what_the_backend_reported(triton, http_client, loader, kind):
    """Model statistics of a fresh load count exactly what the clients got: 3 successes and 2
    failures (an error response, and an error returned from execute)."""
    loader.require(MODEL, config=model_config(MODEL, kind=kind, tag=new_tag()))
    x = {"INPUT0": np.ones(2, np.float32)}
    for _ in range(3):
        http_client.infer(MODEL, x)
    for mode in ("respond", "execute"):
        with pytest.raises(InferenceServerException, match=f"failed as asked \\(cb_fail={mode}\\)"):
            http_client.infer(MODEL, x, parameters={"cb_fail": mode})

    def read():
        return http_client.raw.get_inference_statistics(MODEL)["model_stats"][0]

    stats = stats_when(read, lambda s: s["inference_stats"]["success"]["count"] >= 3
                       and s["inference_stats"]["fail"]["count"] >= 2 and s["execution_count"] >= 4)
    assert stats["inference_count"] == 3
    assert stats["execution_count"] == 4  # 3 + the call that answered with an error response
    assert stats["inference_stats"]["success"]["count"] == 3
    assert stats["inference_stats"]["fail"]["count"] == 2, (
        f"fail count {stats['inference_stats']['fail']['count']}, but 2 requests failed")
    assert [(b["batch_size"], b["compute_infer"]["count"]) for b in stats["batch_stats"]] == [(1, 4)]


def test_backend_reports_the_release_api_version(triton, triton_log, loader, kind, cell):
    """TRITONBACKEND_ApiVersion: what each release's server reports to a backend."""
    tag = new_tag()
    loader.require(MODEL, config=model_config(MODEL, kind=kind, tag=tag))
    found = events(triton_log(), tag)
    assert names(found)[:1] == ["model_initialize"], found
    major, minor = (int(v) for v in found[0].fields["api"].split("."))
    if cell.triton in API_VERSIONS:
        assert (major, minor) == API_VERSIONS[cell.triton]
    else:  # a release newer than the table: same major, no older minor
        assert major == 1 and minor >= max(API_VERSIONS.values())[1], (major, minor)
