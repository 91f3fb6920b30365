"""Requests that break the model's declared contract are refused before the model runs.

Each bad request must come back as 400 (HTTP) / INVALID_ARGUMENT (gRPC) with the server's message,
and the model's execution count must not move: the server, not the model, refuses it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from cfg_support import INVALID_ARGUMENT, model_stats, rejected, stats_reaching

MODEL = "cfg_contract"
GOOD = np.arange(8, dtype=np.float32).reshape(2, 4)

pytestmark = [pytest.mark.backend("python"), pytest.mark.models(MODEL)]

# id: (inputs, requested outputs, expected message fragment per release)
BAD_REQUESTS: dict[str, tuple[dict[str, np.ndarray], list[str] | None, dict[str, str]]] = {
    "wrong_shape": (
        {"INPUT0": np.zeros((2, 3), np.float32), "INPUT1": GOOD},
        None,
        {"default": "unexpected shape for input 'INPUT0' for model 'cfg_contract'. Expected [-1,4], got [2,3]"},
    ),
    "wrong_data_type": (
        {"INPUT0": GOOD.astype(np.int32), "INPUT1": GOOD},
        None,
        {"default": "inference input 'INPUT0' data-type is 'INT32', but model 'cfg_contract' expects 'FP32'"},
    ),
    "batch_over_max_batch_size": (
        {"INPUT0": np.zeros((5, 4), np.float32), "INPUT1": np.zeros((5, 4), np.float32)},
        None,
        {"default": "inference request batch-size must be <= 4 for 'cfg_contract'"},
    ),
    "missing_input": (
        {"INPUT0": GOOD},
        None,
        {
            "default": "expected 2 inputs but got 1 inputs for model 'cfg_contract'",
            "24.03": "expected 2 inputs but got 1 inputs for model 'cfg_contract'. Got input(s) ['INPUT0'], "
                     "but missing required input(s) ['INPUT1']",
        },
    ),
    "unknown_input": (
        {"INPUT0": GOOD, "INPUT1": GOOD, "INPUT9": GOOD},
        None,
        # The server counts inputs and does not name the unknown one (from 24.03 it adds an empty
        # "missing required input(s) ]" list and the inputs in no fixed order).
        {"default": "expected 2 inputs but got 3 inputs for model 'cfg_contract'"},
    ),
    "unknown_output": (
        {"INPUT0": GOOD, "INPUT1": GOOD},
        ["NOPE"],
        {"default": "unexpected inference output 'NOPE' for model 'cfg_contract'"},
    ),
}


def counted(stats: Any, before: Any) -> bool:
    """The one request of two inputs is in both counters: they are recorded apart, after the response,
    so a case that waited for only one leaves the next case a stale baseline."""
    return (stats.inference_count >= before.inference_count + 2
            and stats.execution_count >= before.execution_count + 1)


def test_valid_request_is_served(client: Any) -> None:
    """The baseline: a request within the contract runs the model once."""
    before = model_stats(client, MODEL)
    out = client.infer(MODEL, {"INPUT0": GOOD, "INPUT1": GOOD})
    np.testing.assert_array_equal(out["OUTPUT0"], GOOD + GOOD)
    after = stats_reaching(client, MODEL, lambda s: counted(s, before))
    assert after.execution_count == before.execution_count + 1
    assert after.inference_count == before.inference_count + 2  # a batch of two


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_is_refused(case: str, client: Any, release: Any) -> None:
    """The server refuses the request with INVALID_ARGUMENT and its message; the model is not run."""
    arrays, outputs, fragments = BAD_REQUESTS[case]
    fragment = release.pick(fragments)
    before = model_stats(client, MODEL)
    exc = rejected(lambda: client.infer(MODEL, arrays, outputs=outputs))
    message = str(exc.message())
    assert str(exc.status()) == INVALID_ARGUMENT[client.protocol], f"status {exc.status()}: {message}"
    assert fragment in message, f"expected {fragment!r} in the server's message {message!r}"
    # Statistics arrive after the response: a valid request after the refused one, waited for, shows
    # that everything before it is counted, and only it ran.
    client.infer(MODEL, {"INPUT0": GOOD, "INPUT1": GOOD})
    after = stats_reaching(client, MODEL, lambda s: counted(s, before))
    assert after.execution_count == before.execution_count + 1, "the model ran for a request the server refused"
    assert after.inference_count == before.inference_count + 2
